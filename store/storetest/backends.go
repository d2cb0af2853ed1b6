// Package storetest is the conformance suite every store backend must pass,
// and the helpers that give other packages' tests a fresh, migrated store on
// each backend.
//
// SQLite always runs. PostgreSQL runs when TWOFOLD_TEST_DATABASE_URL names a
// database the tests may create schemas in; each test gets its own schema,
// dropped afterwards. In CI (CI=true) a missing PostgreSQL is a failure, not
// a skip.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-id/twofold/store"
)

// EnvPostgresURL names the variable that points the tests at PostgreSQL.
const EnvPostgresURL = "TWOFOLD_TEST_DATABASE_URL"

// Backend opens fresh, migrated stores of one kind.
type Backend struct {
	Name string
	// URL returns a database URL for a fresh, empty database; the test's
	// cleanup removes it. Open uses it and migrates.
	URL func(t testing.TB) string
}

// Open returns a fresh migrated store on b, closed when t ends.
func (b Backend) Open(t testing.TB) *store.DB {
	t.Helper()
	return OpenURL(t, b.URL(t))
}

// OpenURL opens and migrates the store at dsn, closed when t ends.
func OpenURL(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// Backends returns SQLite and, when configured, PostgreSQL.
func Backends(t testing.TB) []Backend {
	t.Helper()
	backends := []Backend{SQLite()}
	if pg, ok := Postgres(t); ok {
		backends = append(backends, pg)
	}
	return backends
}

// SQLite is a backend of SQLite files in the test's temporary directory.
func SQLite() Backend {
	return Backend{Name: "sqlite", URL: func(t testing.TB) string {
		return "sqlite:" + filepath.Join(t.TempDir(), "twofold.db")
	}}
}

// Postgres is a backend of fresh schemas in the database named by
// TWOFOLD_TEST_DATABASE_URL. It reports false (or fails, in CI) when unset.
func Postgres(t testing.TB) (Backend, bool) {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must test PostgreSQL", EnvPostgresURL)
		}
		return Backend{}, false
	}
	return Backend{Name: "postgres", URL: func(t testing.TB) string { return freshSchema(t, base) }}, true
}

// freshSchema creates a schema with a random name and returns base with its
// search_path pointing there; the schema is dropped when t ends.
func freshSchema(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgresURL, err)
	}
	defer conn.Close(ctx)
	schema := "t_" + strings.ToLower(rand.Text()[:16])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgresURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// ForEach runs fn as a subtest on every backend.
func ForEach(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// must fails the test on err.
func must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}
