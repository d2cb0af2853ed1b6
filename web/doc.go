// Package web holds the HTTP plumbing every handler package shares: request
// ids and request-scoped loggers, access logs, panic recovery, security
// headers, body limits, client addresses behind trusted proxies, cookies,
// and rendering a page or a plain error without leaking a cause.
package web
