package main

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the snapshots
)

// Snapshots of the whole database, for tests that must show that requests
// changed nothing (or only what they may). They read the tables with
// their own connection, not through package store, so they see every
// table and column, including any added later.

// rawDB is the test server's database, read directly.
type rawDB struct {
	*sql.DB
	dialect string
}

// rawDB opens the test server's database for reading it directly.
func (s *testServer) rawDB() rawDB {
	s.t.Helper()
	return openRawDB(s.t, s.a.cfg.databaseURL(), s.db.Dialect())
}

func openRawDB(tb testing.TB, dsn, dialect string) rawDB {
	tb.Helper()
	driver := "pgx"
	if path, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return rawDB{DB: db, dialect: dialect}
}

// dbRow is a row as column → printed value.
type dbRow map[string]string

// dbSnapshot is every table as primary key → row.
type dbSnapshot map[string]map[string]dbRow

// tableKeys are the primary keys of tables whose key is not their first
// column alone.
var tableKeys = map[string][]string{
	"memberships":     {"org_id", "user_id"},
	"oauth2_sessions": {"kind", "signature"},
	"consent_grants":  {"user_id", "client_id"},
	"backup_codes":    {"user_id", "code_hash"},
}

// snapshot reads every table.
func (db rawDB) snapshot(t testing.TB) dbSnapshot {
	t.Helper()
	query := `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	if db.dialect == "sqlite" {
		query = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	}
	tables := queryStrings(t, db.DB, query)
	if len(tables) < 15 {
		t.Fatalf("found only tables %v", tables)
	}
	snap := dbSnapshot{}
	for _, table := range tables {
		snap[table] = readTable(t, db.DB, table)
	}
	return snap
}

func queryStrings(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readTable(t testing.TB, db *sql.DB, table string) map[string]dbRow {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM ` + table)
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	keys := tableKeys[table]
	if keys == nil {
		keys = cols[:1]
	}
	out := map[string]dbRow{}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		row := dbRow{}
		for i, c := range cols {
			row[c] = printValue(vals[i])
		}
		var key []string
		for _, k := range keys {
			key = append(key, row[k])
		}
		out[strings.Join(key, "|")] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}

func printValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return hex.EncodeToString(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// tableDiff is what became of one table's rows.
type tableDiff struct {
	added, removed []dbRow
	changed        [][2]dbRow // before, after
}

func (d tableDiff) empty() bool { return len(d.added)+len(d.removed)+len(d.changed) == 0 }

func (d tableDiff) String() string {
	return fmt.Sprintf("%d added, %d removed, %d changed", len(d.added), len(d.removed), len(d.changed))
}

// diff compares two snapshots table by table.
func diff(before, after dbSnapshot) map[string]tableDiff {
	out := map[string]tableDiff{}
	for _, table := range slices.Sorted(maps.Keys(after)) {
		var d tableDiff
		b, a := before[table], after[table]
		for k, row := range a {
			old, ok := b[k]
			switch {
			case !ok:
				d.added = append(d.added, row)
			case !maps.Equal(old, row):
				d.changed = append(d.changed, [2]dbRow{old, row})
			}
		}
		for k, row := range b {
			if _, ok := a[k]; !ok {
				d.removed = append(d.removed, row)
			}
		}
		out[table] = d
	}
	for table := range before {
		if _, ok := after[table]; !ok {
			out[table] = tableDiff{removed: []dbRow{{"table": table}}}
		}
	}
	return out
}

// changedColumns lists the columns that differ between two versions of a row.
func changedColumns(old, cur dbRow) []string {
	var cols []string
	for c, v := range cur {
		if old[c] != v {
			cols = append(cols, c)
		}
	}
	slices.Sort(cols)
	return cols
}

// failureEvents are the audit events a hostile request may cause.
var failureEvents = []string{"login.failed", "login.throttled", "mfa.failed", "mfa.throttled", "mfa.flow_ended", "logout"}

// checkChanges fails unless the database changed only in what hostile
// requests may change, and logs what did.
func (h *hostile) checkChanges(before, after dbSnapshot) {
	t := h.t
	for table, d := range diff(before, after) {
		if d.empty() {
			continue
		}
		t.Logf("%s: %s", table, d)
		bad := func(format string, args ...any) { t.Errorf("%s changed: "+format, append([]any{table}, args...)...) }
		switch table {
		case "rate_limits":
			// Counters of failed attempts, lifted by the test as time would.
		case "audit_events":
			if len(d.removed)+len(d.changed) > 0 {
				bad("%s", d)
			}
			for _, e := range d.added {
				if !slices.Contains(failureEvents, e["kind"]) {
					bad("event %s by %q about %q: %s", e["kind"], e["actor_id"], e["target_id"], e["details"])
				}
			}
		case "login_flows":
			// Sign-ins may be started (GET /login, /oauth2/auth) or ended
			// (five wrong codes); a wrong code counts against its flow.
			// Nothing else of a flow may change: no step done, no consent.
			for _, c := range d.changed {
				if cols := changedColumns(c[0], c[1]); !slices.Equal(cols, []string{"mfa_failures"}) {
					bad("flow %s: columns %v: %v → %v", c[0]["id"], cols, c[0], c[1])
				}
			}
			for _, f := range d.added {
				if f["granted_scopes"] != "NULL" || f["denied"] == "true" || f["denied"] == "1" || f["mfa_failures"] != "0" {
					bad("new flow %v", f)
				}
			}
		case "webauthn_ceremonies":
			// Pages with a security-key form issue a challenge; a posted
			// answer spends its ceremony, good or not.
			if len(d.changed) > 0 {
				bad("%s", d)
			}
		case "browser_sessions":
			if len(d.added) > 0 {
				bad("%d sessions started", len(d.added))
			}
			for _, c := range d.changed {
				if cols := changedColumns(c[0], c[1]); !slices.Equal(cols, []string{"last_seen_at"}) {
					bad("session of %s: columns %v", c[0]["user_id"], cols)
				}
			}
			for _, s := range d.removed {
				if !h.disposable[s["id_hash"]] {
					bad("session of %s ended", s["user_id"])
				}
			}
		default:
			bad("%s", d)
			for _, c := range d.changed {
				t.Logf("  %v → %v", c[0], c[1])
			}
			for _, r := range d.added {
				t.Logf("  added %v", r)
			}
		}
	}
}
