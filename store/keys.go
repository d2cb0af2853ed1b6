package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// CreateSigningKey inserts k as the active key of its algorithm, retiring
// the previous active key at k.CreatedAt, in one transaction.
func (db *DB) CreateSigningKey(ctx context.Context, k SigningKey) error {
	return db.InTx(ctx, func(ctx context.Context) error {
		if _, err := db.exec(ctx, `UPDATE signing_keys SET retired_at = $2 WHERE alg = $1 AND retired_at IS NULL`,
			k.Alg, utc(k.CreatedAt)); err != nil {
			return fmt.Errorf("retire signing key: %w", err)
		}
		if _, err := db.exec(ctx, `INSERT INTO signing_keys (kid, alg, sealed_key, created_at, retired_at) VALUES ($1, $2, $3, $4, NULL)`,
			k.KID, k.Alg, k.Sealed, utc(k.CreatedAt)); err != nil {
			return fmt.Errorf("create signing key %s: %w", k.KID, err)
		}
		return nil
	})
}

// ListSigningKeys returns the active keys and those retired after
// retiredAfter (still published): the active key first, then newest first.
func (db *DB) ListSigningKeys(ctx context.Context, retiredAfter time.Time) ([]SigningKey, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT kid, alg, sealed_key, created_at, retired_at FROM signing_keys
		WHERE retired_at IS NULL OR retired_at > $1 ORDER BY (retired_at IS NOT NULL), created_at DESC, kid`, utc(retiredAfter))
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var keys []SigningKey
	for rows.Next() {
		var k SigningKey
		var retired sql.NullTime
		if err := rows.Scan(&k.KID, &k.Alg, &k.Sealed, &k.CreatedAt, &retired); err != nil {
			return nil, err
		}
		k.RetiredAt = retired.Time
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// ActiveSigningKeyID returns the kid of the active key of alg; the cheap
// query instances poll to notice a rotation made elsewhere.
func (db *DB) ActiveSigningKeyID(ctx context.Context, alg string) (string, error) {
	var kid string
	err := db.q(ctx).QueryRowContext(ctx, `SELECT kid FROM signing_keys WHERE alg = $1 AND retired_at IS NULL`, alg).Scan(&kid)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("active %s key: %w", alg, ErrNotFound)
	}
	return kid, err
}
