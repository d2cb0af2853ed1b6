// Package migrations embeds the schema of twofold's store, one folder per SQL
// dialect. Files are named NNNN_description.sql and applied in order, each in
// its own transaction, by store.Migrate; the applied versions are recorded in
// the schema_migrations table so applying them again is a no-op.
//
// The two dialects describe the same records. Timestamps are TIMESTAMPTZ on
// PostgreSQL and TIMESTAMP on SQLite, where the driver stores them as integer
// microseconds since the epoch (so they sort and compare exactly as on
// PostgreSQL); lists are JSON text on both.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
