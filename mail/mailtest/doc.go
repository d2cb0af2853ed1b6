// Package mailtest runs a real SMTP server (emersion/go-smtp) on loopback for
// tests, and parses what it receives.
//
// A test starts a Server, points the code under test at its Addr or URL,
// and compares the decoded Subject, Text and HTML of what arrived:
//
//	srv := mailtest.Start(t, "127.0.0.1:0", mailtest.Options{})
//	// … configure the sender with srv.URL() and make it send …
//	msgs := srv.Wait(t, 1, 10*time.Second)
//	if msgs[0].Subject != "Your sign-in code" { … }
//
// The server can require AUTH (PLAIN or LOGIN), offer STARTTLS or speak
// implicit TLS with a certificate from SelfSigned, and be stopped mid-test
// with Close to simulate SMTP being down. A message it cannot parse is
// refused with a 554 reply and reported as a test error at cleanup.
package mailtest
