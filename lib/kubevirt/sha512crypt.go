package kubevirt

import (
	"crypto/sha512"
	"strconv"
	"strings"
)

// cryptAlphabet is the base64 alphabet of crypt(3).
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const (
	sha512Prefix        = "$6$"
	sha512RoundsPrefix  = "rounds="
	sha512RoundsDefault = 5000
	sha512RoundsMin     = 1000
	sha512RoundsMax     = 999999999
	sha512SaltMax       = 16
)

// sha512Crypt hashes password with the SHA-512 crypt algorithm
// ("Unix crypt using SHA-256 and SHA-512", Ulrich Drepper), the $6$ format
// of glibc crypt(3) and /etc/shadow. setting is a salt, optionally with the
// "$6$" prefix and a "rounds=N$" part, e.g. "saltstring" or
// "$6$rounds=10000$saltstring". The salt stops at the first '$' and is cut
// to 16 characters; rounds are clamped to [1000, 999999999] and written to
// the output only when given.
func sha512Crypt(password, setting string) string {
	setting = strings.TrimPrefix(setting, sha512Prefix)
	rounds, customRounds := sha512RoundsDefault, false
	if rest, ok := strings.CutPrefix(setting, sha512RoundsPrefix); ok {
		if num, after, found := strings.Cut(rest, "$"); found {
			if n, err := strconv.ParseUint(num, 10, 64); err == nil {
				rounds, customRounds = int(min(max(n, sha512RoundsMin), sha512RoundsMax)), true
				setting = after
			}
		}
	}
	salt, _, _ := strings.Cut(setting, "$")
	if len(salt) > sha512SaltMax {
		salt = salt[:sha512SaltMax]
	}
	p, s := []byte(password), []byte(salt)

	// Digest B: password, salt, password.
	h := sha512.New()
	h.Write(p)
	h.Write(s)
	h.Write(p)
	b := h.Sum(nil)

	// Digest A.
	h.Reset()
	h.Write(p)
	h.Write(s)
	n := len(p)
	for ; n > sha512.Size; n -= sha512.Size {
		h.Write(b)
	}
	h.Write(b[:n])
	for n = len(p); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(p)
		}
	}
	a := h.Sum(nil)

	// Sequence P: digest DP (password len(p) times) stretched to len(p).
	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	pSeq := stretch(h.Sum(nil), len(p))

	// Sequence S: digest DS (salt 16+a[0] times) stretched to len(s).
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	sSeq := stretch(h.Sum(nil), len(s))

	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sSeq)
		}
		if i%7 != 0 {
			h.Write(pSeq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString(sha512Prefix)
	if customRounds {
		out.WriteString(sha512RoundsPrefix)
		out.WriteString(strconv.Itoa(rounds))
		out.WriteByte('$')
	}
	out.WriteString(salt)
	out.WriteByte('$')
	// Byte order of the final digest in the encoding, three bytes at a time.
	for i := range 21 {
		i0 := (i * 22) % 63
		i1 := (i0 + 21) % 63
		i2 := (i1 + 21) % 63
		b64From24(&out, c[i0], c[i1], c[i2], 4)
	}
	b64From24(&out, 0, 0, c[63], 2)
	return out.String()
}

func stretch(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out)+len(digest) <= n {
		out = append(out, digest...)
	}
	return append(out, digest[:n-len(out)]...)
}

func b64From24(out *strings.Builder, b2, b1, b0 byte, n int) {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for range n {
		out.WriteByte(cryptAlphabet[w&0x3f])
		w >>= 6
	}
}
