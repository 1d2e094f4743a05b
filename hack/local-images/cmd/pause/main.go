// Command pause is the sandbox ("pause") container of the local cluster
// (scripts/local-cluster/core.sh): it holds a pod's namespaces, reaps the
// zombies it inherits as PID 1, and exits 0 on SIGINT or SIGTERM. It does
// what Kubernetes' own pause (build/pause/linux/pause.c) does, in Go, so the
// image is built here from source rather than pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	children := make(chan os.Signal, 16)
	signal.Notify(children, syscall.SIGCHLD)
	go func() {
		for range children {
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}()
	<-stop
}
