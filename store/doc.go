// Package store owns twofold's records and their persistence.
//
// One implementation, DB, runs on PostgreSQL (pgx/v5 through its connection
// pool) and on SQLite (modernc.org/sqlite, no cgo). Queries are written once
// where the two dialects agree and per dialect where they do not (the dialect
// type names each difference); the schema lives in package migrations, one
// folder per dialect. Both backends pass the same conformance suite,
// store/storetest.
//
// Rules every method follows:
//   - ctx is the first parameter and every query takes it; a transaction
//     begun with BeginTX travels in the context and every method joins it.
//   - Missing records are ErrNotFound, duplicates ErrConflict; callers compare
//     with errors.Is. The OAuth 2.0 storage methods return fosite's own
//     sentinel errors, as fosite requires.
//   - Reading a single-use secret and spending it is one conditional statement
//     (UPDATE … WHERE … AND <still unused>) whose affected-row count is
//     checked, so it works once even under concurrent use.
//   - Time is passed in, never read from the clock here, so callers and tests
//     control it.
package store
