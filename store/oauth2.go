package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/handler/pkce"
	"github.com/ory/fosite/storage"
)

// The fosite storage interfaces DB implements.
var (
	_ fosite.ClientManager                 = (*DB)(nil)
	_ oauth2.CoreStorage                   = (*DB)(nil)
	_ oauth2.TokenRevocationStorage        = (*DB)(nil)
	_ pkce.PKCERequestStorage              = (*DB)(nil)
	_ storage.Transactional                = (*DB)(nil)
	_ oauth2.ClientCredentialsGrantStorage = (*DB)(nil)
)

// Kinds of rows in oauth2_sessions.
const (
	kindCode    = "code"
	kindAccess  = "access"
	kindRefresh = "refresh"
	kindPKCE    = "pkce"
	kindOIDC    = "oidc"
)

// storedRequest is a fosite.Requester as written to the data column. The
// session is kept as raw JSON and decoded into the session fosite passes in.
type storedRequest struct {
	ID                string          `json:"id"`
	RequestedAt       time.Time       `json:"requested_at"`
	RequestedScopes   []string        `json:"requested_scopes"`
	GrantedScopes     []string        `json:"granted_scopes"`
	RequestedAudience []string        `json:"requested_audience,omitempty"`
	GrantedAudience   []string        `json:"granted_audience,omitempty"`
	Form              url.Values      `json:"form"`
	Session           json.RawMessage `json:"session"`
}

// subjecter is what twofold's sessions offer beyond fosite.Session.
type subjecter interface{ GetSubject() string }

// sessionRow is one oauth2_sessions row's values, in insertColumns order.
type sessionRow []any

const insertColumns = `(kind, signature, request_id, client_id, subject, requested_at, expires_at, active, data)`

func (db *DB) createRequest(ctx context.Context, kind, signature string, r fosite.Requester) error {
	row, err := newSessionRow(kind, signature, r)
	if err != nil {
		return err
	}
	if b := codeBatchOf(ctx); b != nil && codeFamily(kind) {
		b.add(row)
		return nil
	}
	if err := db.insertSessions(ctx, []sessionRow{row}); err != nil {
		return fmt.Errorf("store %s session: %w", kind, err)
	}
	return nil
}

// ErrUserInactive is returned when a code, token or companion record was
// not written because its user is gone or is between an owner's 2FA reset
// and their enrolling again (mfa_state other than 'none').
var ErrUserInactive = errors.New("store: the user is gone or must set up two-factor authentication again")

// mayHoldTokens is the condition, on subject (an SQL expression), under
// which an oauth2_sessions row may be written: the row is a client's own
// (an empty subject) or its user is in mfa_state 'none', and on PostgreSQL
// the user's row is key-share-locked until the transaction ends. That lock
// conflicts with the FOR UPDATE an owner's reset takes first (LockUser),
// and not with other updates of the user such as the last sign-in time.
func (db *DB) mayHoldTokens(subject string) string {
	return `(` + subject + ` = '' OR EXISTS (SELECT 1 FROM users u WHERE u.id = ` + subject +
		` AND u.mfa_state = '` + string(MFANone) + `'` + db.dialect.forKeyShare + `))`
}

// heldByUser is the condition the first write of a code exchange or a
// refresh carries on the session row it changes (mayHoldTokens), so the
// user's row is locked before the session row itself is. An owner's reset
// takes the user's row and then the session rows; taking them in the same
// order means the two wait for each other rather than deadlock (which
// PostgreSQL would break after a second by failing one), and the write
// finds a reset that committed while it waited. A reset user's code or
// refresh token is gone with the reset, so the refusal reads as the code
// used or the token inactive, as it did before.
func (db *DB) heldByUser() string { return db.mayHoldTokens("oauth2_sessions.subject") }

// insertSessions writes rows, which all have the same subject, in one
// statement that holds them to their user.
//
// Revocation: the rows are written only on mayHoldTokens, so a row for a
// user only while the user exists with no 2FA reset pending, holding the
// user's row. An owner's 2FA reset locks that row (LockUser) before it
// revokes the user's codes and tokens and marks them reset pending, so
// the two are ordered: either the reset waits for this write and then
// revokes what it wrote, or the write waits for the reset, reads the
// user again (READ COMMITTED rechecks a row it waited for), finds the
// reset and writes nothing. Without the condition a reset committing
// between the provider's read of the user and this INSERT left a code, or
// in a code exchange a token, that no revocation had seen. SQLite runs one
// write at a time, so its statement sees the reset whole or not at all.
// Nothing written returns ErrUserInactive.
func (db *DB) insertSessions(ctx context.Context, rows []sessionRow) error {
	var (
		values []string
		args   []any
	)
	for i, row := range rows {
		if row[4] != rows[0][4] {
			return fmt.Errorf("store sessions: rows for subjects %q and %q in one write", rows[0][4], row[4])
		}
		n := len(args)
		// PostgreSQL resolves a parameter in VALUES outside INSERT …
		// VALUES as text unless a row types its column: the first row
		// types the timestamps, and the other rows follow it.
		requested, expires := fmt.Sprintf("$%d", n+6), fmt.Sprintf("$%d", n+7)
		if i == 0 {
			requested, expires = db.dialect.timestamp(requested), db.dialect.timestamp(expires)
		}
		values = append(values, fmt.Sprintf("($%d, $%d, $%d, $%d, $%d, %s, %s, TRUE, $%d)",
			n+1, n+2, n+3, n+4, n+5, requested, expires, n+8))
		args = append(args, row...)
	}
	res, err := db.exec(ctx, `INSERT INTO oauth2_sessions `+insertColumns+`
		SELECT * FROM (VALUES `+strings.Join(values, ", ")+`) AS v
		WHERE `+db.mayHoldTokens("$5"), args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != int64(len(rows)) {
		return ErrUserInactive
	}
	return nil
}

// newSessionRow encodes r for the row (kind, signature).
func newSessionRow(kind, signature string, r fosite.Requester) (sessionRow, error) {
	sess := r.GetSession()
	if sess == nil {
		return nil, fmt.Errorf("store %s session: request has no session", kind)
	}
	sessJSON, err := json.Marshal(sess)
	if err != nil {
		return nil, fmt.Errorf("store %s session: encode session: %w", kind, err)
	}
	data, err := json.Marshal(storedRequest{
		ID: r.GetID(), RequestedAt: r.GetRequestedAt(),
		RequestedScopes: r.GetRequestedScopes(), GrantedScopes: r.GetGrantedScopes(),
		RequestedAudience: r.GetRequestedAudience(), GrantedAudience: r.GetGrantedAudience(),
		Form: r.GetRequestForm(), Session: sessJSON,
	})
	if err != nil {
		return nil, fmt.Errorf("store %s session: encode request: %w", kind, err)
	}
	subject := ""
	if s, ok := sess.(subjecter); ok {
		subject = s.GetSubject()
	}
	expires := expiresAt(kind, sess, r.GetRequestedAt())
	return sessionRow{kind, signature, r.GetID(), r.GetClient().GetID(), subject,
		utc(r.GetRequestedAt()), utc(expires), string(data)}, nil
}

// expiresAt is when a row may be garbage-collected: the token's own expiry
// (a code's companions die with their code), or a day after the request
// for records without one.
func expiresAt(kind string, sess fosite.Session, requested time.Time) time.Time {
	tt := map[string]fosite.TokenType{kindCode: fosite.AuthorizeCode, kindPKCE: fosite.AuthorizeCode,
		kindOIDC: fosite.AuthorizeCode, kindAccess: fosite.AccessToken, kindRefresh: fosite.RefreshToken}
	if t, ok := tt[kind]; ok {
		if exp := sess.GetExpiresAt(t); !exp.IsZero() {
			return exp
		}
	}
	if kind == kindRefresh {
		// A refresh token without expiry lives until revoked.
		return time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return requested.Add(24 * time.Hour)
}

// storedRow is a row read back: the request decoded but for its session,
// which each reader decodes into its own fosite.Session.
type storedRow struct {
	active bool
	req    storedRequest
	client *Client
}

// sessionSelect reads rows with their client; the caller adds WHERE.
var sessionSelect = `SELECT s.kind, s.active, s.data, ` + prefixed("c.", clientColumns) + `
	FROM oauth2_sessions s JOIN oauth2_clients c ON c.id = s.client_id`

// scanStoredRow scans one sessionSelect row.
func scanStoredRow(scan func(...any) error) (string, storedRow, error) {
	var (
		kind, data string
		row        storedRow
		cs         clientScan
	)
	if err := scan(append([]any{&kind, &row.active, &data}, cs.dest()...)...); err != nil {
		return "", row, err
	}
	var err error
	if row.client, err = cs.client(); err != nil {
		return "", row, err
	}
	if err := json.Unmarshal([]byte(data), &row.req); err != nil {
		return "", row, fmt.Errorf("decode %s session: %w", kind, err)
	}
	return kind, row, nil
}

// getRequest loads the request stored under (kind, signature), decoding its
// session into sess. It returns the request even when the row is inactive,
// together with inactiveErr, because fosite needs the request id to revoke
// what an invalidated code or a reused refresh token issued. Inside a token
// exchange (WithCodeReads) a code and its companions come from one query.
func (db *DB) getRequest(ctx context.Context, kind, signature string, sess fosite.Session, inactiveErr error) (fosite.Requester, error) {
	var (
		row storedRow
		err error
	)
	if m := codeReadsOf(ctx); m != nil && codeFamily(kind) {
		row, err = m.get(ctx, db, kind, signature)
	} else {
		_, row, err = scanStoredRow(db.q(ctx).QueryRowContext(ctx, sessionSelect+`
			WHERE s.kind = $1 AND s.signature = $2`, kind, signature).Scan)
		err = notFound(err)
	}
	if err != nil {
		return nil, FositeNotFound(err)
	}
	sr := row.req
	if sess != nil {
		if err := json.Unmarshal(sr.Session, sess); err != nil {
			return nil, fmt.Errorf("decode %s session data: %w", kind, err)
		}
	}
	req := &fosite.Request{
		ID: sr.ID, RequestedAt: sr.RequestedAt, Client: row.client,
		RequestedScope: sr.RequestedScopes, GrantedScope: sr.GrantedScopes,
		RequestedAudience: sr.RequestedAudience, GrantedAudience: sr.GrantedAudience,
		Form: sr.Form, Session: sess,
	}
	if req.Form == nil {
		req.Form = url.Values{}
	}
	if !row.active {
		return req, inactiveErr
	}
	return req, nil
}

func (db *DB) deleteRequest(ctx context.Context, kind, signature string) error {
	if _, err := db.exec(ctx, `DELETE FROM oauth2_sessions WHERE kind = $1 AND signature = $2`, kind, signature); err != nil {
		return fmt.Errorf("delete %s session: %w", kind, err)
	}
	return nil
}

// FositeNotFound maps ErrNotFound to fosite.ErrNotFound, which fosite
// checks for.
func FositeNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %w", fosite.ErrNotFound, err)
	}
	return err
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (db *DB) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return db.createRequest(ctx, kindAccess, signature, r)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (db *DB) GetAccessTokenSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	return db.getRequest(ctx, kindAccess, signature, sess, fosite.ErrInactiveToken)
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage.
func (db *DB) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return db.deleteRequest(ctx, kindAccess, signature)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (db *DB) CreateRefreshTokenSession(ctx context.Context, signature, _ string, r fosite.Requester) error {
	return db.createRequest(ctx, kindRefresh, signature, r)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage; a rotated
// token returns its request with fosite.ErrInactiveToken, which makes fosite
// revoke the whole family (reuse detection).
func (db *DB) GetRefreshTokenSession(ctx context.Context, signature string, sess fosite.Session) (fosite.Requester, error) {
	return db.getRequest(ctx, kindRefresh, signature, sess, fosite.ErrInactiveToken)
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (db *DB) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return db.deleteRequest(ctx, kindRefresh, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage. The used refresh
// token is kept but made inactive, so a later reuse is recognised; the
// access tokens issued with it die. Deactivation is conditional: of two
// concurrent refreshes with one token, only one rotates, and only while
// its user may have tokens (heldByUser: it takes the user's row first, as
// an owner's reset does).
func (db *DB) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	err := db.execOne(ctx, `UPDATE oauth2_sessions SET active = FALSE
		WHERE kind = $1 AND signature = $2 AND request_id = $3 AND active AND `+db.heldByUser(), kindRefresh, signature, requestID)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("rotate refresh token: %w", fosite.ErrInactiveToken)
	}
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	return db.RevokeAccessToken(ctx, requestID)
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: every
// refresh token of the grant goes.
func (db *DB) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return db.revokeByRequest(ctx, kindRefresh, requestID)
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage.
func (db *DB) RevokeAccessToken(ctx context.Context, requestID string) error {
	return db.revokeByRequest(ctx, kindAccess, requestID)
}

func (db *DB) revokeByRequest(ctx context.Context, kind, requestID string) error {
	if _, err := db.exec(ctx, `DELETE FROM oauth2_sessions WHERE kind = $1 AND request_id = $2`, kind, requestID); err != nil {
		return fmt.Errorf("revoke %s tokens of %s: %w", kind, requestID, err)
	}
	return nil
}

// RevokeUserTokens deletes every access and refresh token issued to the
// user, for any client, and every authorization code not yet redeemed
// (with its PKCE and OpenID Connect records), so a code issued while an
// owner's reset ran cannot be exchanged after it. An owner's reset and the
// end of all sessions use it; tokens are opaque, so they stop working at
// once. It returns how many rows went.
func (db *DB) RevokeUserTokens(ctx context.Context, userID string) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM oauth2_sessions WHERE subject = $1 AND kind IN ($2, $3, $4, $5, $6)`,
		userID, kindAccess, kindRefresh, kindCode, kindPKCE, kindOIDC)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return res.RowsAffected()
}

// DeleteExpiredOAuth2Sessions removes rows whose expiry passed before
// cutoff and returns how many went.
func (db *DB) DeleteExpiredOAuth2Sessions(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM oauth2_sessions WHERE expires_at < $1`, utc(cutoff))
	if err != nil {
		return 0, fmt.Errorf("delete expired oauth2 sessions: %w", err)
	}
	return res.RowsAffected()
}
