package main

import "syscall"

// sysProcAttr puts a server under test in a process group of its own, so that
// Ctrl-C reaches only the load tool, which then stops the server itself, and
// makes the server die with the load tool, so that a killed run leaves no
// server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
