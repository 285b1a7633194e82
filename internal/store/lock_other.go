//go:build !unix

package store

// lockDataDir is a no-op where advisory file locks are not available.
func lockDataDir(string) (func(), error) { return func() {}, nil }
