package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twofold-id/twofold/password"
	"github.com/twofold-id/twofold/seal"
	"github.com/twofold-id/twofold/store"
)

// app is what every command shares: configuration, logger, sealer, store.
type app struct {
	cfg    *Config
	log    *slog.Logger
	sealer *seal.Sealer
	db     *store.DB
	// passwordParams are argon2id's costs; tests lower them to run fast.
	passwordParams password.Params
	// now is the clock of twofold's own rules (sessions, flows, factors,
	// rate limits); tests move it. fosite keeps its own time.Now.
	now func() time.Time
}

// openApp loads and validates the configuration, resolves the secret key
// (generating it in development mode), opens the store and migrates it.
func openApp(ctx context.Context, e env, configPath string, dev bool) (*app, error) {
	cfg, err := LoadConfig(configPath, e.getenv)
	if err != nil {
		return nil, err
	}
	cfg.Dev = dev
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(cfg, e.stderr)
	key, err := secretKey(cfg, log)
	if err != nil {
		return nil, err
	}
	sealer, err := seal.New(key, nil)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.databaseURL(), store.Options{})
	if err != nil {
		return nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("database migrated", "dialect", db.Dialect(), "versions", applied)
	}
	return &app{cfg: cfg, log: log, sealer: sealer, db: db, passwordParams: password.DefaultParams, now: time.Now}, nil
}

func (a *app) close() { a.db.Close() }

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(cfg.LogLevel) // validated
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: errorMessage}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// devKeyFile is where development mode keeps its generated secret key.
const devKeyFile = "secret.key"

// secretKey returns the configured secret key. In development mode with
// none configured, it reads (or first generates) <data_dir>/secret.key,
// created with mode 0600 in a 0700 directory.
func secretKey(cfg *Config, log *slog.Logger) ([]byte, error) {
	if cfg.SecretKey != "" {
		return decodeSecretKey(cfg.SecretKey)
	}
	path := cfg.SecretKeyFile
	if path == "" {
		if !cfg.Dev {
			return nil, errors.New("no secret key configured")
		}
		path = filepath.Join(cfg.DataDir, devKeyFile)
		if err := generateKeyFile(path); err != nil {
			return nil, err
		}
		log.Warn("development mode: using the generated secret key; never use it in production", "file", path)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret key file: %w", err)
	}
	key, err := decodeSecretKey(string(raw))
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	return key, nil
}

// generateKeyFile writes 32 random bytes, base64, to path unless it exists.
func generateKeyFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // another process generated it first
	}
	if err != nil {
		return fmt.Errorf("create secret key file: %w", err)
	}
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	return errors.Join(err, f.Close())
}

// readPassword reads a password from stdin: the first line, without its
// line ending.
func readPassword(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return "", err
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(pw, "\r"), nil
}

// errorMessage logs an error value as its message, in both formats. The
// text handler formats a value of its own with %+v, and errors that carry
// a stack (fosite's, through github.com/pkg/errors) then print it: a dozen
// frames, escaped into one quoted value, in every refused token's event.
// The JSON handler already uses Error().
func errorMessage(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() != slog.KindAny {
		return a
	}
	if err, ok := a.Value.Any().(error); ok && err != nil {
		a.Value = slog.StringValue(err.Error())
	}
	return a
}
