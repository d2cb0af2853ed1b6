package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Sentinel errors; compare with errors.Is.
var (
	// ErrNotFound is returned when no record matches.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a record with the same unique key exists.
	ErrConflict = errors.New("store: conflict")
	// ErrThrottled is returned by rate limits while a key is blocked.
	ErrThrottled = errors.New("store: throttled")
)

// DB is twofold's store on PostgreSQL or SQLite.
type DB struct {
	sql     *sql.DB
	dialect dialect
	closers []func()
	// onAudit, if set, sees every audit event written (metrics).
	onAudit func(AuditEvent)
	// notFree remembers rate-limit keys whose attempts are not free
	// (ratelimit.go).
	notFree limitHints
}

// SetAuditHook has fn called with every audit event once it is written.
// Set it before serving; it is not synchronized.
func (db *DB) SetAuditHook(fn func(AuditEvent)) { db.onAudit = fn }

// dialect names what differs between the two SQL dialects. Everything else
// is written once in standard SQL with $N placeholders, which both accept.
type dialect struct {
	name string
	// forUpdate locks the selected rows until the transaction ends. SQLite
	// needs none: its write transactions are IMMEDIATE and so exclusive.
	forUpdate string
	// skipLocked lets several workers share a queue without waiting on each
	// other (PostgreSQL); on SQLite there is only one writer at a time.
	skipLocked string
	// forKeyShare locks the selected rows against FOR UPDATE (and deletes)
	// until the transaction ends, without blocking other updates of them
	// (PostgreSQL; SQLite's writes are exclusive anyway).
	forKeyShare string
	// timestamp types a parameter as a timestamp where the database cannot
	// tell from context (a VALUES list outside INSERT … VALUES).
	timestamp func(param string) string
	// txOptions begin every transaction. On PostgreSQL that is READ
	// COMMITTED, whatever the server's default: the store's conditional
	// writes and locks are written for it. Each statement of a transaction
	// sees what committed before it, and a write that waited on a row lock
	// sees the row as the other transaction left it; that is what orders
	// an owner's reset against a concurrent code or token write (see
	// insertSessions). At REPEATABLE READ the reset's snapshot would be
	// taken before it waited for such a write, and miss what it wrote. (It
	// is said in each BEGIN, not as a startup parameter, which PgBouncer
	// refuses; a single statement at a stricter default fails on such a
	// conflict rather than missing it.)
	txOptions *sql.TxOptions
	// migrationLock serializes concurrent migrators (PostgreSQL only).
	migrationLock string
	isUnique      func(error) bool
}

var postgresDialect = dialect{
	name:          "postgres",
	forUpdate:     " FOR UPDATE",
	skipLocked:    " FOR UPDATE SKIP LOCKED",
	forKeyShare:   " FOR KEY SHARE",
	timestamp:     func(p string) string { return p + "::timestamptz" },
	txOptions:     &sql.TxOptions{Isolation: sql.LevelReadCommitted},
	migrationLock: "SELECT pg_advisory_xact_lock(7020616)",
	isUnique: func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "23505"
	},
}

var sqliteDialect = dialect{
	name:      "sqlite",
	timestamp: func(p string) string { return p },
	isUnique: func(err error) bool {
		var sqErr *sqlite.Error
		if !errors.As(err, &sqErr) {
			return false
		}
		code := sqErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// Options tune the connection pool. Zero values pick defaults.
type Options struct {
	// MaxConns bounds open connections (PostgreSQL). Zero means the URL's
	// pool_max_conns if it has one, else 4 per core and at least 8: a
	// request spends most of its time waiting on the database, not on the
	// CPU, so a pool as small as the core count would queue requests. SQLite
	// uses its own fixed pool.
	MaxConns int
}

// Open connects to the database named by url: postgres://… (or
// postgresql://…) for PostgreSQL, sqlite:PATH for SQLite. It does not
// migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, opts)
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	default:
		return nil, fmt.Errorf("database url must start with postgres:// or sqlite:, got %q", redactURL(dsn))
	}
}

func openPostgres(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = int32(opts.MaxConns)
	case !strings.Contains(dsn, "pool_max_conns="):
		cfg.MaxConns = int32(max(8, 4*runtime.NumCPU()))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	db := &DB{sql: sqlDB, dialect: postgresDialect, closers: []func(){pool.Close}}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("sqlite: database path is empty")
	}
	if path != ":memory:" {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
		// Create the file owner-only before SQLite does (its WAL and shared
		// memory files inherit the mode): it holds password hashes.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database file: %w", err)
		}
		f.Close()
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Write transactions take the write lock at BEGIN, so a read-then-write
	// transaction never deadlocks against another and fails with SQLITE_BUSY.
	q.Set("_txlock", "immediate")
	// Times are integer microseconds: they sort and compare exactly, like
	// PostgreSQL's timestamptz, and read back as time.Time.
	q.Set("_time_integer_format", "unix_micro")
	q.Set("_inttotime", "1")
	sqlDB, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// One writer at a time is SQLite's nature; a small pool keeps readers
	// concurrent without piling up waiters on the write lock.
	sqlDB.SetMaxOpenConns(8)
	db := &DB{sql: sqlDB, dialect: sqliteDialect}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Dialect reports "postgres" or "sqlite".
func (db *DB) Dialect() string { return db.dialect.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", db.dialect.name, err)
	}
	return nil
}

// Stats reports the connection pool's statistics.
func (db *DB) Stats() sql.DBStats { return db.sql.Stats() }

// Close releases the connections.
func (db *DB) Close() error {
	err := db.sql.Close()
	for _, c := range db.closers {
		c()
	}
	return err
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type txKey struct{}

// q returns the transaction in ctx, or the pool.
func (db *DB) q(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return tx
	}
	return db.sql
}

// BeginTX starts a transaction and returns a context carrying it; every
// method called with that context joins it. It implements fosite's
// storage.Transactional. Calling it inside a transaction is an error.
func (db *DB) BeginTX(ctx context.Context) (context.Context, error) {
	if _, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return ctx, errors.New("store: transaction already open in context")
	}
	tx, err := db.sql.BeginTx(ctx, db.dialect.txOptions)
	if err != nil {
		return ctx, fmt.Errorf("begin transaction: %w", err)
	}
	return context.WithValue(ctx, txKey{}, tx), nil
}

// Commit commits the transaction in ctx.
func (db *DB) Commit(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	if !ok {
		return errors.New("store: no transaction in context")
	}
	return tx.Commit()
}

// Rollback rolls back the transaction in ctx.
func (db *DB) Rollback(ctx context.Context) error {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	if !ok {
		return errors.New("store: no transaction in context")
	}
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// InTx runs fn in a transaction, joining one already in ctx. fn's error, or
// a panic, rolls everything back.
func (db *DB) InTx(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if _, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return fn(ctx)
	}
	txCtx, err := db.BeginTX(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = db.Rollback(txCtx)
			panic(p)
		}
		if err != nil {
			_ = db.Rollback(txCtx)
		}
	}()
	if err = fn(txCtx); err != nil {
		return err
	}
	return db.Commit(txCtx)
}

// exec runs a statement and maps unique violations to ErrConflict.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	res, err := db.q(ctx).ExecContext(ctx, query, args...)
	if err != nil && db.dialect.isUnique(err) {
		return nil, fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return res, err
}

// execOne runs a conditional statement that must change exactly one row;
// zero rows is ErrNotFound.
func (db *DB) execOne(ctx context.Context, query string, args ...any) error {
	res, err := db.exec(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return ErrNotFound
	}
	return nil
}

// notFound maps sql.ErrNoRows to ErrNotFound, and so a lookup by a key
// PostgreSQL cannot hold in a text column (a NUL byte, invalid UTF-8:
// SQLSTATE 22021). No row can have such a key; SQLite, which stores any
// bytes, finds none either; and these keys come from requests (flow and
// client ids, emails, token signatures), where a failure would answer bad
// input with a 5xx.
func notFound(err error) error {
	var pgErr *pgconn.PgError
	if errors.Is(err, sql.ErrNoRows) || (errors.As(err, &pgErr) && pgErr.Code == "22021") {
		return ErrNotFound
	}
	return err
}

// redactURL hides the password in a database URL for error messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

// utc normalizes a time for storage: UTC, microsecond precision (what both
// databases keep), so that a value read back equals the value written.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
