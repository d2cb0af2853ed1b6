package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-id/twofold/store/storetest"
)

// Helpers of the fault tests: a PostgreSQL database of the test's own that
// it may cut off and bring back, and a pause point that stops a statement
// inside whatever transaction runs it, so the test can kill that
// transaction's backend half-way.

// pgDatabase is a fresh PostgreSQL database, dropped when the test ends.
// Tests of other packages share the cluster (and a database, with a schema
// each), so a fault test never restarts PostgreSQL: it makes its own
// database refuse connections instead.
type pgDatabase struct {
	t     *testing.T
	name  string
	url   string // twofold's database URL
	admin string // the maintenance database, for ALTER DATABASE
	cut   bool
}

// newPGDatabase creates the database. It skips the test without
// TWOFOLD_TEST_DATABASE_URL, and fails in CI.
func newPGDatabase(t *testing.T) *pgDatabase {
	t.Helper()
	base := os.Getenv(storetest.EnvPostgresURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; CI must test PostgreSQL", storetest.EnvPostgresURL)
		}
		t.Skipf("%s is not set: this fault test needs PostgreSQL", storetest.EnvPostgresURL)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", storetest.EnvPostgresURL, err)
	}
	d := &pgDatabase{t: t, name: "twofold_fault_" + strings.ToLower(rand.Text()[:12])}
	admin, own := *u, *u
	admin.Path, own.Path = "/postgres", "/"+d.name
	d.admin, d.url = admin.String(), own.String()
	d.must(d.admin, "CREATE DATABASE "+d.name)
	t.Cleanup(func() {
		if d.cut {
			d.exec(d.admin, "ALTER DATABASE "+d.name+" ALLOW_CONNECTIONS true")
		}
		if err := d.exec(d.admin, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", d.name, err)
		}
	})
	return d
}

// withT is d as seen from test t (a subtest): its helpers fail t.
func (d *pgDatabase) withT(t *testing.T) *pgDatabase {
	c := *d
	c.t = t
	return &c
}

// backend points newTestServer at this database.
func (d *pgDatabase) backend() storetest.Backend {
	return storetest.Backend{Name: "postgres", URL: func(testing.TB) string { return d.url }}
}

func (d *pgDatabase) exec(dsn, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func (d *pgDatabase) must(dsn, sql string, args ...any) {
	d.t.Helper()
	if err := d.exec(dsn, sql, args...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// cutOff makes the database unreachable: new connections are refused and
// every open one is terminated, as when the database server goes away.
func (d *pgDatabase) cutOff() {
	d.t.Helper()
	d.cut = true
	d.must(d.admin, "ALTER DATABASE "+d.name+" ALLOW_CONNECTIONS false")
	d.must(d.admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", d.name)
}

// restore lets connections in again.
func (d *pgDatabase) restore() {
	d.t.Helper()
	d.must(d.admin, "ALTER DATABASE "+d.name+" ALLOW_CONNECTIONS true")
	d.cut = false
}

// query returns one number read from the test's database.
func (d *pgDatabase) query(sql string, args ...any) int {
	d.t.Helper()
	var n int
	d.scan(&n, sql, args...)
	return n
}

// queryText returns one string read from the test's database.
func (d *pgDatabase) queryText(sql string, args ...any) string {
	d.t.Helper()
	var s string
	d.scan(&s, sql, args...)
	return s
}

func (d *pgDatabase) scan(v any, sql string, args ...any) {
	d.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		d.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(v); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// pauseKey is the advisory lock a paused statement waits for.
const pauseKey = 7020617

// pausePoint holds the statements it matches: a trigger makes each INSERT
// into its table (that matches its condition) wait for an advisory lock
// the test holds, inside the transaction that runs it. The test then
// terminates that backend, as if twofold had died in the middle.
type pausePoint struct {
	d    *pgDatabase
	conn *pgx.Conn
	name string
}

// pauseAt pauses INSERTs into table whose new row satisfies when (SQL on
// NEW; empty for all) until release.
func (d *pgDatabase) pauseAt(table, when string) *pausePoint {
	d.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		d.t.Fatal(err)
	}
	p := &pausePoint{d: d, conn: conn, name: "twofold_test_pause_" + table}
	d.t.Cleanup(p.release)
	if when != "" {
		when = "WHEN (" + when + ")"
	}
	for _, sql := range []string{
		fmt.Sprintf("SELECT pg_advisory_lock(%d)", pauseKey),
		fmt.Sprintf(`CREATE OR REPLACE FUNCTION twofold_test_pause() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_advisory_xact_lock(%d); RETURN NEW; END $$`, pauseKey),
		fmt.Sprintf("CREATE TRIGGER %s BEFORE INSERT ON %s FOR EACH ROW %s EXECUTE FUNCTION twofold_test_pause()", p.name, table, when),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			d.t.Fatalf("%s: %v", sql, err)
		}
	}
	return p
}

// waiter waits for a backend held at the pause and returns its pid and
// whether its transaction has written anything yet.
func (p *pausePoint) waiter() (pid int32, wrote bool) {
	p.d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		err := p.conn.QueryRow(context.Background(), `SELECT a.pid, a.backend_xid IS NOT NULL
			FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.objid = $1 AND NOT l.granted AND a.datname = current_database()`,
			pauseKey).Scan(&pid, &wrote)
		if err == nil {
			return pid, wrote
		}
		if err != pgx.ErrNoRows {
			p.d.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.d.t.Fatal("no statement reached the pause point")
	return 0, false
}

// waiting reports whether a backend is held at the pause.
func (p *pausePoint) waiting() bool {
	var n int
	if err := p.conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = $1 AND NOT granted`, pauseKey).Scan(&n); err != nil {
		p.d.t.Fatal(err)
	}
	return n > 0
}

// killWriter waits for the transaction paused here, fails the test with
// msg if it arrived without having written anything, then kills its
// backend and lifts the pause.
func (p *pausePoint) killWriter(msg string) {
	p.d.t.Helper()
	pid, wrote := p.waiter()
	if !wrote {
		p.d.t.Fatal(msg)
	}
	p.kill(pid)
	p.release()
}

// kill terminates the backend, as a crash of twofold's process would end
// its connection: PostgreSQL rolls its transaction back.
func (p *pausePoint) kill(pid int32) {
	p.d.t.Helper()
	var ok bool
	if err := p.conn.QueryRow(context.Background(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		p.d.t.Fatalf("terminate backend %d: %v %v", pid, ok, err)
	}
}

// release removes the trigger and lets anything still waiting go on.
func (p *pausePoint) release() {
	if p.conn == nil {
		return
	}
	ctx := context.Background()
	// Unlock first: DROP TRIGGER waits for the held statement's lock on
	// the table, and the held statement waits for this lock.
	p.conn.Exec(ctx, fmt.Sprintf("SELECT pg_advisory_unlock(%d)", pauseKey))
	p.conn.Exec(ctx, "DROP TRIGGER IF EXISTS "+p.name+" ON "+strings.TrimPrefix(p.name, "twofold_test_pause_"))
	p.conn.Close(ctx)
	p.conn = nil
}

// tokenCall is one request to the token endpoint made from any goroutine:
// it never calls t.Fatal, and returns the status and the JSON body.
func tokenCall(issuer, clientID, secret string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, issuer+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("token endpoint answered %d with non-JSON %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, body, nil
}
