package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

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

const mailColumns = `id, recipient, subject, text_body, html_body, created_at, next_attempt_at, attempts, sent_at, last_error`

func scanMail(row interface{ Scan(...any) error }) (Mail, error) {
	var m Mail
	var sent sql.NullTime
	err := row.Scan(&m.ID, &m.Recipient, &m.Subject, &m.Text, &m.HTML, &m.CreatedAt, &m.NextAttemptAt, &m.Attempts, &sent, &m.LastError)
	m.SentAt = sent.Time
	return m, err
}

// ClaimMail locks the oldest message due at now and calls send with it in a
// transaction. When send succeeds the message is marked sent; when it fails,
// the attempt is recorded and the next one scheduled after retry(attempts).
// Several workers, in several processes, can claim at once: each message is
// handed to exactly one (SKIP LOCKED on PostgreSQL, the single writer on
// SQLite). It returns false when nothing was due.
func (db *DB) ClaimMail(ctx context.Context, now time.Time, retry func(attempts int) time.Duration,
	send func(Mail) error) (bool, error) {
	claimed := false
	err := db.InTx(ctx, func(ctx context.Context) error {
		m, err := scanMail(db.q(ctx).QueryRowContext(ctx, `SELECT `+mailColumns+` FROM mail_outbox
			WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT 1`+db.dialect.skipLocked, utc(now)))
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return fmt.Errorf("claim mail: %w", err)
		}
		claimed = true
		if sendErr := send(m); sendErr != nil {
			_, err = db.exec(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1`,
				m.ID, utc(now.Add(retry(m.Attempts+1))), sendErr.Error())
			return err
		}
		_, err = db.exec(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, sent_at = $2, last_error = '' WHERE id = $1`, m.ID, utc(now))
		return err
	})
	return claimed, err
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
			return nil, err
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

// MailBacklog returns how many messages wait and the oldest one's age.
func (db *DB) MailBacklog(ctx context.Context, now time.Time) (int, time.Duration, error) {
	var n int
	var oldest sql.NullTime
	// MIN over a timestamp column loses SQLite's declared type, so order
	// and take the first row instead.
	err := db.q(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL`).Scan(&n)
	if err != nil {
		return 0, 0, fmt.Errorf("mail backlog: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	err = db.q(ctx).QueryRowContext(ctx, `SELECT created_at FROM mail_outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 1`).Scan(&oldest)
	if err != nil {
		return 0, 0, fmt.Errorf("mail backlog: %w", err)
	}
	return n, now.Sub(oldest.Time), nil
}
