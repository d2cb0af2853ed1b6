package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
)

// Message is one accepted message, with its MIME parts decoded.
type Message struct {
	// From and To are the envelope (MAIL FROM and RCPT TO), not headers.
	From string
	To   []string
	// Data is the message as received, headers and body.
	Data []byte
	// AuthUser is who logged in before sending it ("" without AUTH).
	AuthUser string
	// TLS tells whether the connection was encrypted (STARTTLS or
	// implicit).
	TLS bool
	// Subject is the Subject header with RFC 2047 encoded words decoded.
	Subject string
	// Text is the text/plain part (or the whole body of a single-part
	// text/plain message), its transfer encoding (quoted-printable or
	// base64) decoded and CRLF normalized to LF.
	Text string
	// HTML is the text/html part, decoded likewise.
	HTML string
	// Header is the message's top-level header.
	Header netmail.Header
}

// maxDepth bounds the nesting of multipart bodies.
const maxDepth = 8

// parse fills Subject, Text, HTML and Header from Data. Parts are taken
// from any multipart nesting (alternative, mixed, related); the first
// text/plain and text/html parts that are not attachments win, and other
// parts are ignored. Only UTF-8 and US-ASCII text is accepted.
func (m *Message) parse() error {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	m.Header = msg.Header
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("decode subject %q: %w", msg.Header.Get("Subject"), err)
	}
	return m.readPart(textproto.MIMEHeader(msg.Header), msg.Body, 0)
}

// readPart reads one body part with header h, descending into multiparts.
func (m *Message) readPart(h textproto.MIMEHeader, body io.Reader, depth int) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain" // RFC 2045's default
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		if depth >= maxDepth {
			return errors.New("multipart nested too deep")
		}
		if params["boundary"] == "" {
			return fmt.Errorf("%s without a boundary", mt)
		}
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// A raw part keeps its transfer encoding for decode to undo.
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: next part: %w", mt, err)
			}
			if err := m.readPart(part.Header, part, depth+1); err != nil {
				return err
			}
		}
	}
	if mt != "text/plain" && mt != "text/html" {
		return nil
	}
	if d, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); d == "attachment" {
		return nil
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		return fmt.Errorf("%s part: charset %q not supported", mt, params["charset"])
	}
	b, err := decode(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return fmt.Errorf("%s part: %w", mt, err)
	}
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch {
	case mt == "text/plain" && m.Text == "":
		m.Text = s
	case mt == "text/html" && m.HTML == "":
		m.HTML = s
	}
	return nil
}

// decode undoes a Content-Transfer-Encoding.
func decode(encoding string, r io.Reader) ([]byte, error) {
	switch e := strings.ToLower(strings.TrimSpace(encoding)); e {
	case "", "7bit", "8bit", "binary":
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // line breaks are skipped
	default:
		return nil, fmt.Errorf("transfer encoding %q not supported", encoding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", encoding, err)
	}
	return b, nil
}
