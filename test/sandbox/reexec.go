package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// The control plane must not outlive the process that started it, however
// that process ends: Stop, Ctrl-C, a test's timeout (os.Exit, deferred calls
// skipped) or SIGKILL. kube-controller-manager is started here with the
// Linux parent-death signal (prctl PR_SET_PDEATHSIG, see prctl(2)): the
// kernel sends it SIGKILL when its parent goes away. envtest starts etcd and
// kube-apiserver itself and offers no way to set that signal, so Start points
// envtest at symlinks named etcd and kube-apiserver to this very executable
// in a directory of its own; started under those names, the process sets the
// signal in init and execs the real binary, which keeps it (prctl(2): the
// setting survives execve except for set-user-ID/set-group-ID binaries and
// binaries with file capabilities).
//
// prctl(2) ties the signal to the thread that forked the child. Go ends a
// thread only when a goroutine locked to it with runtime.LockOSThread exits
// without unlocking, which neither envtest nor this package does.

// reexecSpec is the file, beside the symlinks, that makes this executable
// run the real binary: "<parent pid>\n<directory of the real binaries>\n".
const reexecSpec = "sandbox-reexec"

// reexecNames are the binaries started through the symlinks.
var reexecNames = []string{"etcd", "kube-apiserver"}

func init() {
	if err := reexec(os.Args[0]); err != nil {
		fmt.Fprintf(os.Stderr, "sandbox: starting %s: %v\n", os.Args[0], err)
		os.Exit(127)
	}
}

// reexec replaces this process with the real binary when it was started
// through one of the symlinks writeReexecDir made; otherwise it returns nil
// and the program runs as usual.
func reexec(arg0 string) error {
	name := filepath.Base(arg0)
	if !isReexecName(name) {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(arg0), reexecSpec))
	if err != nil {
		return nil // a program of that name, not one of ours
	}
	parent, dir, err := parseReexecSpec(string(b))
	if err != nil {
		return err
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", errno)
	}
	// The parent may have died between fork and prctl; then nobody would
	// send the signal.
	if os.Getppid() != parent {
		return fmt.Errorf("the sandbox (pid %d) is gone", parent)
	}
	bin := filepath.Join(dir, name)
	// #nosec G204 -- the real binary beside the envtest assets, with envtest's arguments.
	return syscall.Exec(bin, append([]string{bin}, os.Args[1:]...), os.Environ())
}

func isReexecName(name string) bool {
	for _, n := range reexecNames {
		if name == n {
			return true
		}
	}
	return false
}

func parseReexecSpec(s string) (parent int, dir string, err error) {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 2 {
		return 0, "", errors.New("malformed " + reexecSpec)
	}
	if parent, err = strconv.Atoi(lines[0]); err != nil {
		return 0, "", fmt.Errorf("malformed %s: %w", reexecSpec, err)
	}
	return parent, lines[1], nil
}

// writeReexecDir makes dir/etcd and dir/kube-apiserver start the binaries in
// assets with the parent-death signal set (see reexec) and returns their
// paths by name.
func writeReexecDir(dir, assets string) (map[string]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	spec := fmt.Sprintf("%d\n%s\n", os.Getpid(), assets)
	if err := os.WriteFile(filepath.Join(dir, reexecSpec), []byte(spec), 0o600); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, name := range reexecNames {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, name)
		if err := os.Symlink(self, p); err != nil {
			return nil, err
		}
		paths[name] = p
	}
	return paths, nil
}
