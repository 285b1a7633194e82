// Command plugboard runs the Plugboard integration platform.
//
//	plugboard serve     run the server
//	plugboard connector pack or publish a connector package
//	plugboard vault     rotate the key that seals secrets
//	plugboard version   print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "plugboard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		usage()
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:])
	case "connector":
		return connectorCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "vault":
		return vaultCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "version":
		fmt.Printf("plugboard %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	case "help", "-h", "--help":
		usage()
		return nil
	}
	usage()
	return fmt.Errorf("unknown command %q", args[0])
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: plugboard <command> [flags]

Commands:
  serve     run the server (see "plugboard serve -h" for settings)
  connector pack or publish a connector package (see "plugboard connector help")
  vault     rotate the key that seals secrets (see "plugboard vault help")
  version   print the version
`)
}
