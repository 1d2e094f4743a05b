package sandbox

import (
	"errors"
	"io"
	"net"
	"sync"
)

// KubeVirt's webhooks are served by virt-api; while virt-api restarts (a
// KubeVirt upgrade, a node drain) the API server cannot call them, and with
// failurePolicy Fail it refuses every write they cover: `Internal error
// occurred: failed calling webhook "<name>": failed to call webhook: Post
// "<url>": dial tcp <addr>: connect: connection refused`. The sandbox puts a
// TCP forwarder in front of its KubeVirt admission server and registers the
// webhooks at the forwarder's address, so SetKubeVirtAdmissionReachable can
// take that address away (nothing listens: connection refused; the open
// connections the API server keeps are cut, as a stopped server's are) and
// bring it back. The webhook configurations are cluster-wide: a test that
// uses it must not run in parallel with others that write VMs or VMIs.

// admissionForwarder forwards the connections to its address to target.
type admissionForwarder struct {
	target string
	mu     sync.Mutex
	addr   string
	ln     net.Listener // nil while down
	conns  map[net.Conn]struct{}
}

func startAdmissionForwarder(target string) (*admissionForwarder, error) {
	f := &admissionForwarder{target: target, addr: "127.0.0.1:0", conns: map[net.Conn]struct{}{}}
	if err := f.up(); err != nil {
		return nil, err
	}
	return f, nil
}

// up listens again on the forwarder's address (the first time, on a free
// port, which then stays its address).
func (f *admissionForwarder) up() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	f.ln, f.addr = ln, ln.Addr().String()
	go f.accept(ln)
	return nil
}

// down stops listening and cuts the open connections.
func (f *admissionForwarder) down() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		return nil
	}
	err := f.ln.Close()
	f.ln = nil
	for c := range f.conns {
		_ = c.Close()
	}
	return err
}

func (f *admissionForwarder) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by down
		}
		go f.forward(c)
	}
}

func (f *admissionForwarder) forward(c net.Conn) {
	t, err := net.Dial("tcp", f.target)
	if err != nil {
		_ = c.Close()
		return
	}
	f.mu.Lock()
	if f.ln == nil { // went down meanwhile
		f.mu.Unlock()
		_, _ = c.Close(), t.Close()
		return
	}
	f.conns[c], f.conns[t] = struct{}{}, struct{}{}
	f.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_, _ = dst.Close(), src.Close()
	}
	go pipe(t, c)
	go pipe(c, t)
	wg.Wait()
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, t)
	f.mu.Unlock()
}

// errNoKubeVirtAdmission: the sandbox runs without KubeVirt's admission
// server (it cannot be built here).
var errNoKubeVirtAdmission = errors.New("the sandbox runs without KubeVirt's admission server")

// SetKubeVirtAdmissionReachable makes KubeVirt's admission webhooks
// unreachable (false: writes to VirtualMachines and VirtualMachineInstances
// fail with "connection refused", as while virt-api restarts) or reachable
// again (true). Cluster-wide: see above.
func (s *Sandbox) SetKubeVirtAdmissionReachable(reachable bool) error {
	if s.kubevirtForwarder == nil {
		return errNoKubeVirtAdmission
	}
	if reachable {
		return s.kubevirtForwarder.up()
	}
	return s.kubevirtForwarder.down()
}
