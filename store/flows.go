package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

const flowColumns = `id, binding_hash, client_id, query, requested_at, expires_at, user_id, amr, auth_time, granted_scopes, denied, mfa_failures`

// CreateLoginFlow inserts f.
func (db *DB) CreateLoginFlow(ctx context.Context, f LoginFlow) error {
	_, err := db.exec(ctx, `INSERT INTO login_flows (`+flowColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		f.ID, f.BindingHash, nullString(f.ClientID), f.Query, utc(f.RequestedAt), utc(f.ExpiresAt),
		nullString(f.UserID), jsonList(f.AMR), nullTime(f.AuthTime), nullList(f.GrantedScopes), f.Denied, f.MFAFailures)
	if err != nil {
		return fmt.Errorf("create login flow: %w", err)
	}
	return nil
}

// GetLoginFlow returns the flow with id if it has not expired at now.
func (db *DB) GetLoginFlow(ctx context.Context, id string, now time.Time) (LoginFlow, error) {
	var fs flowScan
	err := db.q(ctx).QueryRowContext(ctx, `SELECT `+flowColumns+` FROM login_flows WHERE id = $1 AND expires_at > $2`,
		id, utc(now)).Scan(fs.dest()...)
	if err != nil {
		return LoginFlow{}, fmt.Errorf("get login flow: %w", notFound(err))
	}
	return fs.flow()
}

// flowWithUserQuery reads a flow, its user and their FactorSummary in one
// statement. The inner join leaves out a flow with no user yet.
var flowWithUserQuery = `SELECT ` + qualified("f", flowColumns) + `, ` + qualified("u", userColumns) + `, ` + factorColumns + `
	FROM login_flows f JOIN users u ON u.id = f.user_id LEFT JOIN totp_credentials t ON t.user_id = u.id
	WHERE f.id = $1 AND f.expires_at > $2`

// GetLoginFlowWithUser returns the flow with id if it has not expired at
// now and has a user (its password step is done), with the user and their
// second factors at a glance (GetUserWithFactors), in one query: every step
// after the password needs all three. It returns ErrNotFound for a flow
// without a user too; GetLoginFlow tells the two apart.
func (db *DB) GetLoginFlowWithUser(ctx context.Context, id string, now time.Time) (LoginFlow, User, FactorSummary, error) {
	var (
		fls flowScan
		us  userScan
		fs  factorScan
	)
	dest := append(append(fls.dest(), us.dest()...), fs.dest()...)
	if err := db.q(ctx).QueryRowContext(ctx, flowWithUserQuery, id, utc(now)).Scan(dest...); err != nil {
		return LoginFlow{}, User{}, FactorSummary{}, fmt.Errorf("get login flow with user: %w", notFound(err))
	}
	f, err := fls.flow()
	if err != nil {
		return LoginFlow{}, User{}, FactorSummary{}, err
	}
	return f, us.user(), fs.summary(), nil
}

// flowScan holds a row of flowColumns while it is scanned.
type flowScan struct {
	f                LoginFlow
	userID, clientID sql.NullString
	amr              string
	authTime         sql.NullTime
	granted          sql.NullString
}

func (s *flowScan) dest() []any {
	return []any{&s.f.ID, &s.f.BindingHash, &s.clientID, &s.f.Query, &s.f.RequestedAt, &s.f.ExpiresAt,
		&s.userID, &s.amr, &s.authTime, &s.granted, &s.f.Denied, &s.f.MFAFailures}
}

func (s *flowScan) flow() (LoginFlow, error) {
	f := s.f
	f.UserID, f.AuthTime, f.ClientID = s.userID.String, s.authTime.Time, s.clientID.String
	var err error
	if f.AMR, err = parseList(s.amr); err != nil {
		return LoginFlow{}, fmt.Errorf("login flow amr: %w", err)
	}
	if s.granted.Valid {
		if f.GrantedScopes, err = parseList(s.granted.String); err != nil {
			return LoginFlow{}, fmt.Errorf("login flow scopes: %w", err)
		}
	}
	return f, nil
}

// UpdateLoginFlow records the steps done in f: the authenticated user and
// how, and the granted scopes. It fails with ErrNotFound once the flow has
// expired or been consumed.
func (db *DB) UpdateLoginFlow(ctx context.Context, f LoginFlow, now time.Time) error {
	err := db.execOne(ctx, `UPDATE login_flows SET user_id = $2, amr = $3, auth_time = $4, granted_scopes = $5, denied = $6
		WHERE id = $1 AND expires_at > $7`,
		f.ID, nullString(f.UserID), jsonList(f.AMR), nullTime(f.AuthTime), nullList(f.GrantedScopes), f.Denied, utc(now))
	if err != nil {
		return fmt.Errorf("update login flow: %w", err)
	}
	return nil
}

// ConsumeLoginFlow deletes the flow; exactly one caller wins, the others get
// ErrNotFound. A finished flow turns into an authorization code once.
func (db *DB) ConsumeLoginFlow(ctx context.Context, id string, now time.Time) error {
	if err := db.execOne(ctx, `DELETE FROM login_flows WHERE id = $1 AND expires_at > $2`, id, utc(now)); err != nil {
		return fmt.Errorf("consume login flow: %w", err)
	}
	return nil
}

// DeleteUserLoginFlows ends every sign-in of the user in progress, at
// whatever step: an owner's reset must not leave a flow that already passed
// its second factor waiting to turn into a code.
func (db *DB) DeleteUserLoginFlows(ctx context.Context, userID string) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM login_flows WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete login flows of %s: %w", userID, err)
	}
	return res.RowsAffected()
}

const sessionColumns = `id_hash, user_id, amr, auth_time, created_at, last_seen_at, expires_at`

// CreateBrowserSession inserts s.
func (db *DB) CreateBrowserSession(ctx context.Context, s BrowserSession) error {
	_, err := db.exec(ctx, `INSERT INTO browser_sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		s.IDHash, s.UserID, jsonList(s.AMR), utc(s.AuthTime), utc(s.CreatedAt), utc(s.LastSeenAt), utc(s.ExpiresAt))
	if err != nil {
		return fmt.Errorf("create browser session: %w", err)
	}
	return nil
}

// GetBrowserSession returns the session whose id hashes to idHash, if it is
// neither past its absolute expiry nor idle since before idleCutoff.
func (db *DB) GetBrowserSession(ctx context.Context, idHash []byte, now, idleCutoff time.Time) (BrowserSession, error) {
	var s BrowserSession
	var amr string
	err := db.q(ctx).QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM browser_sessions
		WHERE id_hash = $1 AND expires_at > $2 AND last_seen_at > $3`, idHash, utc(now), utc(idleCutoff)).
		Scan(&s.IDHash, &s.UserID, &amr, &s.AuthTime, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt)
	if err != nil {
		return BrowserSession{}, fmt.Errorf("get browser session: %w", notFound(err))
	}
	if s.AMR, err = parseList(amr); err != nil {
		return BrowserSession{}, fmt.Errorf("browser session amr: %w", err)
	}
	return s, nil
}

// TouchBrowserSession moves the session's idle clock to now.
func (db *DB) TouchBrowserSession(ctx context.Context, idHash []byte, now time.Time) error {
	if err := db.execOne(ctx, `UPDATE browser_sessions SET last_seen_at = $2 WHERE id_hash = $1`, idHash, utc(now)); err != nil {
		return fmt.Errorf("touch browser session: %w", err)
	}
	return nil
}

// DeleteBrowserSession ends one session; deleting a missing one is no error.
func (db *DB) DeleteBrowserSession(ctx context.Context, idHash []byte) error {
	if _, err := db.exec(ctx, `DELETE FROM browser_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete browser session: %w", err)
	}
	return nil
}

// DeleteUserBrowserSessions ends every session of the user.
func (db *DB) DeleteUserBrowserSessions(ctx context.Context, userID string) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM browser_sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of user %s: %w", userID, err)
	}
	return res.RowsAffected()
}

// PutConsentGrant records (or replaces) the scopes the user granted the client.
func (db *DB) PutConsentGrant(ctx context.Context, g ConsentGrant) error {
	_, err := db.exec(ctx, `INSERT INTO consent_grants (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at`,
		g.UserID, g.ClientID, jsonList(g.Scopes), utc(g.GrantedAt))
	if err != nil {
		return fmt.Errorf("put consent grant: %w", err)
	}
	return nil
}

// GetConsentGrant returns what the user granted the client.
func (db *DB) GetConsentGrant(ctx context.Context, userID, clientID string) (ConsentGrant, error) {
	g := ConsentGrant{UserID: userID, ClientID: clientID}
	var scopes string
	err := db.q(ctx).QueryRowContext(ctx, `SELECT scopes, granted_at FROM consent_grants WHERE user_id = $1 AND client_id = $2`,
		userID, clientID).Scan(&scopes, &g.GrantedAt)
	if err != nil {
		return ConsentGrant{}, fmt.Errorf("get consent grant: %w", notFound(err))
	}
	if g.Scopes, err = parseList(scopes); err != nil {
		return ConsentGrant{}, fmt.Errorf("consent grant scopes: %w", err)
	}
	return g, nil
}

// DeleteExpired removes expired login flows and browser sessions.
func (db *DB) DeleteExpired(ctx context.Context, now time.Time) error {
	for _, q := range []string{
		`DELETE FROM login_flows WHERE expires_at <= $1`,
		`DELETE FROM browser_sessions WHERE expires_at <= $1`,
		`DELETE FROM webauthn_ceremonies WHERE expires_at <= $1`,
	} {
		if _, err := db.exec(ctx, q, utc(now)); err != nil {
			return fmt.Errorf("delete expired: %w", err)
		}
	}
	_, err := db.DeleteExpiredOAuth2Sessions(ctx, now)
	return err
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullTime(t time.Time) sql.NullTime { return sql.NullTime{Time: utc(t), Valid: !t.IsZero()} }

func nullList(l []string) sql.NullString {
	if l == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: jsonList(l), Valid: true}
}
