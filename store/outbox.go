package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The outbox's delivery protocol is a lease, so that no transaction or lock
// is held while a worker talks to an SMTP server (on SQLite a held write
// transaction would stop every other writer for the whole conversation):
//
//	pending ──ClaimMail──▶ leased ──MarkMailSent──▶ sent
//	   ▲                     │ └────FailMail─────▶ failed
//	   └──RetryMail / lease──┘
//	        runs out
//
// ClaimMail is one conditional UPDATE: it takes the oldest message due,
// moves its next_attempt_at to the end of the lease (so no other worker sees
// it as due until then) and increments attempts. The new attempts value is
// the lease's fencing token: MarkMailSent, RetryMail and FailMail only
// change the row while attempts still equals it, so a worker whose lease ran
// out and was taken over by another cannot record anything for the message.
//
// A worker that dies holding a lease leaves the message to be claimed again
// when the lease ends. Delivery is therefore at least once, but the only way
// to send a message twice is to lose the worker (crash, or a failed database
// write) after the SMTP server accepted the message and before MarkMailSent
// committed; a lease long enough to cover the whole SMTP conversation keeps a
// slow, live worker from overlapping with another.
//
// Times come from the callers' clocks, so hosts running workers must agree
// on the time to well within a lease.

// EnqueueMail puts m in the outbox, in the caller's transaction when ctx
// carries one, so the mail exists if and only if the event that caused it
// was committed.
func (db *DB) EnqueueMail(ctx context.Context, m Mail) (int64, error) {
	var id int64
	err := db.q(ctx).QueryRowContext(ctx, `INSERT INTO mail_outbox
		(recipient, subject, text_body, html_body, created_at, next_attempt_at, attempts, last_error)
		VALUES ($1, $2, $3, $4, $5, $5, 0, '') RETURNING id`,
		m.Recipient, m.Subject, m.Text, m.HTML, utc(m.CreatedAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("enqueue mail to %s: %w", m.Recipient, err)
	}
	return id, nil
}

const mailColumns = `id, recipient, subject, text_body, html_body, created_at, next_attempt_at, attempts, sent_at, failed_at, last_error`

func scanMail(row interface{ Scan(...any) error }) (Mail, error) {
	var m Mail
	var sent, failed sql.NullTime
	err := row.Scan(&m.ID, &m.Recipient, &m.Subject, &m.Text, &m.HTML, &m.CreatedAt, &m.NextAttemptAt, &m.Attempts, &sent, &failed, &m.LastError)
	m.SentAt, m.FailedAt = sent.Time, failed.Time
	return m, err
}

// mailPending selects messages that are neither sent nor given up.
const mailPending = `sent_at IS NULL AND failed_at IS NULL`

// ClaimMail leases the oldest pending message due at now to the caller until
// now+lease and returns it; its Attempts, already incremented, is the token
// that MarkMailSent, RetryMail and FailMail take. Several workers, in several
// processes, can claim at once and each message goes to one of them (SKIP
// LOCKED on PostgreSQL, the single writer on SQLite). It returns ErrNotFound
// when nothing is due.
//
// ClaimMail must not run inside a transaction: the lease has to be committed
// before the message is sent, and the send must hold no lock.
func (db *DB) ClaimMail(ctx context.Context, now time.Time, lease time.Duration) (Mail, error) {
	if _, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return Mail{}, errors.New("claim mail: must not run inside a transaction")
	}
	if lease <= 0 {
		return Mail{}, fmt.Errorf("claim mail: lease %v is not positive", lease)
	}
	// The outer WHERE repeats the conditions so that the statement is
	// correct on its own, whatever the subquery saw.
	m, err := scanMail(db.sql.QueryRowContext(ctx, `UPDATE mail_outbox
		SET attempts = attempts + 1, next_attempt_at = $2
		WHERE id = (SELECT id FROM mail_outbox WHERE `+mailPending+` AND next_attempt_at <= $1
			ORDER BY next_attempt_at, id LIMIT 1`+db.dialect.skipLocked+`)
		AND `+mailPending+` AND next_attempt_at <= $1
		RETURNING `+mailColumns, utc(now), utc(now.Add(lease))))
	if err != nil {
		return Mail{}, fmt.Errorf("claim mail: %w", notFound(err))
	}
	return m, nil
}

// MarkMailSent records that message id was accepted by the mail server at
// at. attempt is the Attempts value ClaimMail returned; if another claim has
// happened since, or the message is no longer pending, nothing changes and
// the error is ErrNotFound.
func (db *DB) MarkMailSent(ctx context.Context, id int64, attempt int, at time.Time) error {
	err := db.execOne(ctx, `UPDATE mail_outbox SET sent_at = $3, last_error = ''
		WHERE id = $1 AND attempts = $2 AND `+mailPending, id, attempt, utc(at))
	if err != nil {
		return fmt.Errorf("mark mail %d sent (attempt %d): %w", id, attempt, err)
	}
	return nil
}

// RetryMail records that attempt of message id failed with cause and makes
// the message due again at next. Like MarkMailSent, it changes nothing and
// returns ErrNotFound unless the caller still holds the message.
func (db *DB) RetryMail(ctx context.Context, id int64, attempt int, next time.Time, cause string) error {
	err := db.execOne(ctx, `UPDATE mail_outbox SET next_attempt_at = $3, last_error = $4
		WHERE id = $1 AND attempts = $2 AND `+mailPending, id, attempt, utc(next), cause)
	if err != nil {
		return fmt.Errorf("retry mail %d (attempt %d): %w", id, attempt, err)
	}
	return nil
}

// FailMail gives up on message id after attempt failed with cause: it is
// never claimed again and leaves the backlog, and cause stays in
// LastError. Like MarkMailSent, it changes nothing and returns ErrNotFound
// unless the caller still holds the message.
func (db *DB) FailMail(ctx context.Context, id int64, attempt int, at time.Time, cause string) error {
	err := db.execOne(ctx, `UPDATE mail_outbox SET failed_at = $3, last_error = $4
		WHERE id = $1 AND attempts = $2 AND `+mailPending, id, attempt, utc(at), cause)
	if err != nil {
		return fmt.Errorf("fail mail %d (attempt %d): %w", id, attempt, err)
	}
	return nil
}

// ListMail returns the newest messages first, for the development outbox.
func (db *DB) ListMail(ctx context.Context, limit int) ([]Mail, error) {
	rows, err := db.q(ctx).QueryContext(ctx, `SELECT `+mailColumns+` FROM mail_outbox ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list mail: %w", err)
	}
	defer rows.Close()
	var out []Mail
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			return nil, fmt.Errorf("list mail: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// GetMail returns one message.
func (db *DB) GetMail(ctx context.Context, id int64) (Mail, error) {
	m, err := scanMail(db.q(ctx).QueryRowContext(ctx, `SELECT `+mailColumns+` FROM mail_outbox WHERE id = $1`, id))
	if err != nil {
		return Mail{}, fmt.Errorf("get mail %d: %w", id, notFound(err))
	}
	return m, nil
}

// MailBacklog returns how many messages wait to be delivered (neither sent
// nor given up) and the oldest one's age.
func (db *DB) MailBacklog(ctx context.Context, now time.Time) (int, time.Duration, error) {
	var n int
	var oldest sql.NullTime
	err := db.q(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE `+mailPending).Scan(&n)
	if err != nil {
		return 0, 0, fmt.Errorf("mail backlog: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	// MIN over a timestamp column loses SQLite's declared type, so order
	// and take the first row instead.
	err = db.q(ctx).QueryRowContext(ctx, `SELECT created_at FROM mail_outbox WHERE `+mailPending+` ORDER BY created_at LIMIT 1`).Scan(&oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("mail backlog: %w", err)
	}
	return n, now.Sub(oldest.Time), nil
}
