// Command twofold is an OpenID Connect identity provider with a real second
// factor. It is the only composition root: it reads the configuration,
// opens the store and wires every handler.
//
//	twofold serve [--config FILE] [--dev]
//	twofold migrate
//	twofold users create --email E [--name N] --password-stdin
//	twofold users reset-2fa --email E
//	twofold orgs create --name N --owner E [--require-2fa]
//	twofold orgs add-member --org N --email E [--role owner|member]
//	twofold clients create --name N --redirect-uri U [--redirect-uri U]... [--public] ...
//	twofold keys rotate
//	twofold version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// ownsRuntime is true in the twofold process and false in tests, which
// run commands in-process: serve then leaves the test binary's garbage
// collector alone (memory.go).
var ownsRuntime bool

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `twofold: an OpenID Connect provider with a real second factor

Usage:
  twofold serve [--config FILE] [--dev]
  twofold migrate [--config FILE]
  twofold users create --email E [--name N] --password-stdin
  twofold users reset-2fa --email E
  twofold orgs create --name N --owner E [--require-2fa]
  twofold orgs add-member --org N --email E [--role owner|member]
  twofold clients create --name N --redirect-uri U [--redirect-uri U]... [--public]
          [--skip-consent] [--scopes "openid email profile offline_access"]
          [--grant-types authorization_code,refresh_token,client_credentials]
          [--post-logout-redirect-uri U]... [--require-2fa] [--no-pkce]
  twofold keys rotate
  twofold version

Every command takes --config FILE; settings also come from TWOFOLD_* variables
(see docs/configuration.md).
`

// errUsage marks a command-line mistake: usage is printed, exit status 2.
var errUsage = errors.New("usage")

func main() {
	ownsRuntime = true
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	switch {
	case errors.Is(err, errUsage):
		// A bare errUsage was explained on stderr already (flag errors, an
		// unknown command); a wrapped one carries what was wrong, such as
		// every problem of a client registration, and must not be lost.
		if err != errUsage {
			fmt.Fprintf(os.Stderr, "twofold: %s\n\n", strings.TrimPrefix(err.Error(), errUsage.Error()+": "))
		}
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "twofold:", err)
		os.Exit(1)
	}
}

// env is the process environment the commands read, injected for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// run dispatches a command line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	if len(rest) > 0 && (cmd == "users" || cmd == "orgs" || cmd == "clients" || cmd == "keys") {
		cmd, rest = cmd+" "+rest[0], rest[1:]
	}
	commands := map[string]func(context.Context, env, []string) error{
		"serve":           cmdServe,
		"migrate":         cmdMigrate,
		"users create":    cmdUsersCreate,
		"users reset-2fa": cmdUsersReset2FA,
		"orgs create":     cmdOrgsCreate,
		"orgs add-member": cmdOrgsAddMember,
		"clients create":  cmdClientsCreate,
		"keys rotate":     cmdKeysRotate,
		"version":         func(context.Context, env, []string) error { fmt.Fprintln(stdout, "twofold", version); return nil },
		"help":            func(context.Context, env, []string) error { fmt.Fprint(stdout, usage); return nil },
	}
	fn, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(stderr, "twofold: unknown command %q\n\n", cmd)
		return errUsage
	}
	return fn(ctx, e, rest)
}

// flags is a command's flag set with the shared --config flag.
type flags struct {
	*flag.FlagSet
	config string
}

func newFlags(name string, e env) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.SetOutput(e.stderr)
	f.StringVar(&f.config, "config", "", "YAML configuration file")
	return f
}

// parse parses args; extra positional arguments are a usage error.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errUsage
	}
	if f.NArg() > 0 {
		fmt.Fprintf(f.Output(), "unexpected argument %q\n", f.Arg(0))
		return errUsage
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
