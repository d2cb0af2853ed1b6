package store

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-id/twofold/migrations"
)

// Migrate applies the embedded migrations of this database's dialect that
// are not yet recorded in schema_migrations, each in its own transaction. It
// returns the versions it applied; applying them again is a no-op.
func (db *DB) Migrate(ctx context.Context) ([]int, error) {
	files, err := migrationFiles(db.dialect.name)
	if err != nil {
		return nil, err
	}
	if _, err := db.sql.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		applied_at TIMESTAMP NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied []int
	for _, f := range files {
		done, err := db.applyMigration(ctx, f)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", f.name, err)
		}
		if done {
			applied = append(applied, f.version)
		}
	}
	return applied, nil
}

type migrationFile struct {
	version int
	name    string
	sql     string
}

func migrationFiles(dialect string) ([]migrationFile, error) {
	entries, err := fs.ReadDir(migrations.FS, dialect)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var files []migrationFile
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		body, err := fs.ReadFile(migrations.FS, dialect+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		files = append(files, migrationFile{version: version, name: e.Name(), sql: string(body)})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].version < files[j].version })
	return files, nil
}

// applyMigration applies f unless it is recorded; it reports whether it did.
func (db *DB) applyMigration(ctx context.Context, f migrationFile) (applied bool, err error) {
	err = db.InTx(ctx, func(ctx context.Context) error {
		if db.dialect.migrationLock != "" {
			if _, err := db.q(ctx).ExecContext(ctx, db.dialect.migrationLock); err != nil {
				return err
			}
		}
		var n int
		if err := db.q(ctx).QueryRowContext(ctx,
			`SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, f.version).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := db.q(ctx).ExecContext(ctx, f.sql); err != nil {
			return err
		}
		applied = true
		_, err := db.q(ctx).ExecContext(ctx,
			`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, f.version, utc(time.Now()))
		return err
	})
	return applied, err
}
