package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// env is what one run owns: a scratch directory, the twofold binary built
// into it, a fresh database, a secret key and the loopback port twofold
// listens on (kept across restarts, so the issuer never changes).
type env struct {
	dir     string // scratch directory, removed by close
	bin     string // the built twofold binary
	dialect string // "postgres" or "sqlite"
	dbURL   string // TWOFOLD_DATABASE_URL
	// adminURL and dbName are set on PostgreSQL: the maintenance database
	// the harness connects to, and the database it created for this run.
	adminURL, dbName string
	secret           string
	addr, issuer     string
	pprof            string // TWOFOLD_PPROF_LISTEN, empty for off
	dbPrefix         string // of the database's name; "twofold_bench_" if empty
}

// newEnv builds twofold and creates its database.
func newEnv(ctx context.Context, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "twofold-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, bin: filepath.Join(dir, "twofold"), dialect: o.db, adminURL: o.pgURL, pprof: o.pprof}
	key := make([]byte, 32)
	rand.Read(key)
	e.secret = base64.StdEncoding.EncodeToString(key)
	if e.addr, err = freeAddr(); err != nil {
		return nil, errors.Join(err, e.close(ctx))
	}
	e.issuer = "http://" + e.addr
	if err := e.build(ctx); err != nil {
		return nil, errors.Join(err, e.close(ctx))
	}
	switch o.db {
	case "postgres":
		err = e.createDatabase(ctx)
	case "sqlite":
		e.dbURL = "sqlite:" + filepath.Join(dir, "twofold.db")
	default:
		err = fmt.Errorf("-db %q: want postgres or sqlite", o.db)
	}
	if err != nil {
		return nil, errors.Join(err, e.close(ctx))
	}
	return e, nil
}

// build compiles ./cmd/twofold of the module the harness runs in.
func (e *env) build(ctx context.Context) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", e.bin, "./cmd/twofold")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/twofold: %v\n%s", err, out)
	}
	return nil
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

// freeAddr picks a free loopback port.
func freeAddr() (string, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}

// freeAddrs picks n distinct free loopback ports: each listener stays open
// until all are picked, so no port is handed out twice.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// createDatabase starts PostgreSQL if it does not answer, then creates
// twofold_bench_<time>.
func (e *env) createDatabase(ctx context.Context) error {
	conn, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	e.dbName = cmp.Or(e.dbPrefix, "twofold_bench_") + time.Now().Format("20060102_150405")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+e.dbName); err != nil {
		return fmt.Errorf("create database %s: %w", e.dbName, err)
	}
	u, err := url.Parse(e.adminURL)
	if err != nil {
		return err
	}
	u.Path = "/" + e.dbName
	e.dbURL = u.String()
	return nil
}

// admin connects to the maintenance database, starting the cluster with
// pg_ctlcluster when nothing answers.
func (e *env) admin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err == nil {
		return conn, nil
	}
	fmt.Fprintf(os.Stderr, "bench: PostgreSQL does not answer (%v); starting it with pg_ctlcluster 15 main start\n", err)
	if out, err := exec.CommandContext(ctx, "pg_ctlcluster", "15", "main", "start").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pg_ctlcluster 15 main start: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err = pgx.Connect(ctx, e.adminURL)
		if err == nil || time.Now().After(deadline) {
			return conn, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// close drops the database and removes the scratch directory.
func (e *env) close(ctx context.Context) error {
	var errs []error
	if e.dbName != "" {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, e.adminURL); err != nil {
			errs = append(errs, err)
		} else {
			_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+e.dbName+" WITH (FORCE)")
			errs = append(errs, err, conn.Close(ctx))
		}
	}
	errs = append(errs, os.RemoveAll(e.dir))
	return errors.Join(errs...)
}

// environ is twofold's environment: the caller's, without any TWOFOLD_*
// setting of its own, plus this run's.
func (e *env) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TWOFOLD_") {
			out = append(out, kv)
		}
	}
	return append(out,
		"TWOFOLD_ISSUER="+e.issuer,
		"TWOFOLD_LISTEN="+e.addr,
		"TWOFOLD_DATABASE_URL="+e.dbURL,
		"TWOFOLD_DATA_DIR="+filepath.Join(e.dir, "data"),
		"TWOFOLD_SECRET_KEY="+e.secret,
		"TWOFOLD_LOG_LEVEL=warn",
		// The harness plays many users behind one reverse proxy: each
		// worker sends its own X-Forwarded-For address, so the per-address
		// password throttle sees many users, not one address doing 32
		// sign-ins at once.
		"TWOFOLD_TRUSTED_PROXIES=127.0.0.0/8",
		"TWOFOLD_PPROF_LISTEN="+e.pprof,
	)
}

// command runs one of twofold's operator commands and returns its stdout.
func (e *env) command(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Env = e.environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("twofold %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
