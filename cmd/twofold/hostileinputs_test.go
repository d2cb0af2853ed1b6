package main

import (
	"bytes"
	"encoding/base64"
	"mime/multipart"
	"net/http"
	"strings"
	"unicode/utf16"
)

// The hostile inputs of TestHostileInput: values for every field a route
// reads, raw bodies, headers, path segments and methods.

// hostileValues go into every field a route reads, one value at a time.
var hostileValues = []string{
	"",
	" ",
	"0",
	"-1",
	"١٢٣٤٥٦",                 // Arabic-Indic digits
	"１２３４５６",                 // fullwidth digits
	"𝟏𝟐𝟑𝟒𝟓𝟔",                 // mathematical bold digits
	"\u212aabcd-fghjk-mnpqr", // a backup code with a Kelvin sign for its k
	"\x00",
	"123456\x00",
	"a\x00b@example.com",
	"\xff\xfe\xfd", // invalid UTF-8
	"\xc0\xaf",     // an overlong "/"
	"code.\x00",    // shaped like a code or token: key.signature
	"token.\xff\xfe",
	"' OR '1'='1",
	"'; DROP TABLE users; --",
	`" OR 1=1 --`,
	"1; SELECT pg_sleep(5)--",
	"<script>alert(1)</script>",
	`"><img src=x onerror=alert(1)>`,
	`{{.}}{{template "layout"}}`,
	"javascript:alert(1)",
	"//evil.example/",
	"https://evil.example/callback",
	"../../../../etc/passwd",
	"%00%zz%",
	"\r\nSet-Cookie: injected=1",
	"🔐\u202e\u200b",
	strings.Repeat("A", 100_000),
	strings.Repeat("9", 4096),
	"null",
	`{"a":[1,{"b":null}]}`,
	"-9223372036854775809",
	"1e309",
	"NaN",
}

// xssMarkers must never come back unescaped.
var xssMarkers = []string{"<script>alert(1)</script>", "<img src=x onerror=alert(1)>"}

// leakMarkers are what a stack trace, a Go error or a database error
// would show; a page for a user carries none of them.
var leakMarkers = []string{
	"goroutine ", "runtime error", "panic", "nil pointer", "invalid memory address", ".go:",
	"sql:", "SQLSTATE", "sqlite", "pgconn", "failed to connect", "ERROR:", "syntax error", "violates", "duplicate key",
	"invalid byte sequence", "no rows in result set", "%!", "<nil>", "template:", "context canceled",
	"store:", "mfa:", "fosite", "x509:", "crypto/",
}

// rawBody is a request body as sent, with its headers.
type rawBody struct {
	name, contentType, encoding string
	body                        []byte
}

// hostileBodies are posted to every route that takes a POST.
func hostileBodies() []rawBody {
	const form = "application/x-www-form-urlencoded"
	big := bytes.Repeat([]byte("a"), 2<<20)
	noise := make([]byte, 2<<20)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>8)
	}
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	mw.WriteField("flow", "x")
	mw.WriteField("code", "123456")
	fw, _ := mw.CreateFormFile("response", "key.json")
	fw.Write([]byte(`{"id":"x"}`))
	mw.Close()
	var utf16Body bytes.Buffer
	for _, u := range utf16.Encode([]rune("code=123456&email=a@example.com")) {
		utf16Body.Write([]byte{byte(u), byte(u >> 8)})
	}
	return []rawBody{
		{"empty form", form, "", nil},
		{"empty, no content type", "", "", nil},
		{"2 MB form", form, "", append([]byte("flow="), big...)},
		{"2 MB of noise as a form", form, "", noise},
		{"2 MB of noise", "application/octet-stream", "", noise},
		{"bad percent-encoding", form, "", []byte("flow=%zz&code=%&email=%%&password=%0")},
		{"semicolons", form, "", []byte("flow=a;code=b;x=1")},
		{"repeated parameters", form, "", []byte("flow=a&flow=b&code=1&code=2&email=a&email=b&response=x&response=y&request=a&request=b")},
		{"ten thousand parameters", form, "", bytes.Repeat([]byte("a=1&"), 10_000)},
		{"JSON", "application/json", "", []byte(`{"flow":"x","code":"123456","email":"a@example.com","response":{"id":1}}`)},
		{"XML with an external entity", "text/xml", "", []byte(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>`)},
		{"multipart", mw.FormDataContentType(), "", mp.Bytes()},
		{"multipart without a boundary", "multipart/form-data", "", mp.Bytes()},
		{"UTF-16 form", form + "; charset=utf-16le", "", utf16Body.Bytes()},
		{"garbage content type", ";;=;=\"", "", []byte("a=1")},
		{"gzip that is not", form, "gzip", []byte("\x1f\x8b\x08garbage")},
	}
}

// hostileHeaders are sent to every route, each set alone.
func hostileHeaders(clientID string) []http.Header {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	return []http.Header{
		h("Cookie", "twofold_session=garbage; twofold_device=garbage"),
		h("Cookie", "twofold_session="+strings.Repeat("x", 4000)),
		h("Cookie", "twofold_session=' OR 1=1 --; twofold_device=<script>"),
		h("Cookie", `twofold_session="quoted"; twofold_session=second; twofold_session=`),
		h("Cookie", ";;;;=;=;twofold_session"),
		h("Cookie", "twofold_device="+strings.Repeat("A", 26)+"%00; twofold_session=%FF%FE"),
		h("Authorization", "Bearer"),
		h("Authorization", "Bearer ' OR 1=1 --"),
		h("Authorization", "Bearer "+strings.Repeat("A", 8000)),
		h("Authorization", "Basic !!!not-base64"),
		h("Authorization", basic("no-colon")),
		h("Authorization", basic(clientID+":wrong-secret")),
		h("Authorization", basic("%zz:%zz")),
		h("Authorization", basic("\x00:\x00")),
		h("Authorization", "Negotiate abc", "Authorization", "Bearer a", "Authorization", "Basic b"),
		h("X-Forwarded-For", "' OR 1=1, 999.1.1.1, ::ffff:garbage", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"),
		h("Origin", "null", "Sec-Fetch-Site", "same-site"),
		h("Accept", "application/json", "Accept-Language", strings.Repeat("x,", 2000)),
	}
}

// hostileSegments replace each path variable ({token}, {id}, {user},
// {org}, a static file's name), already escaped for the path.
var hostileSegments = []string{
	"x",
	"%00",
	"%2e%2e",
	"..%2F..%2Fetc%2Fpasswd",
	"%FF%FE",
	"%E2%80%AE",
	"%D9%A1%D9%A2%D9%A3",
	"%27%20OR%201%3D1--",
	"%3Cscript%3Ealert(1)%3C%2Fscript%3E",
	"-1",
	"%20",
	"AAAA====",
	"00000000-0000-0000-0000-000000000000",
	"%25",
	strings.Repeat("a", 8000),
}

// hostileMethods are tried on every path.
var hostileMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "FOO"}
