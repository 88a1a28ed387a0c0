package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/apikeyd/apikeyd/internal/config"
)

// healthcheckCommand runs `apikeyd healthcheck [--url URL] [--timeout 5s]`:
// it asks a running server's /healthz and succeeds when the answer is 200.
// It is the container image's HEALTHCHECK, as the image has no curl (see
// docs/operations.md). It reads ADDR only, to find the server.
func healthcheckCommand(ctx context.Context, args []string, stdout io.Writer) error {
	var target string
	var timeout time.Duration
	cfg, err := parse(stdout, "healthcheck", config.Healthcheck, args, func(fs *flag.FlagSet) {
		fs.StringVar(&target, "url", "", "the URL to ask; empty: /healthz at ADDR, over loopback when ADDR is every address")
		fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	})
	if err != nil {
		return helped(err)
	}
	if target == "" {
		if target, err = healthzURL(cfg.Addr); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// The server is asked directly, never through a proxy of the environment.
	client := &http.Client{Transport: &http.Transport{}}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", target, res.Status)
	}
	return nil
}

// healthzURL returns the URL of /healthz of a server listening on addr
// (ADDR): at its host, or at 127.0.0.1 when it listens on every address.
func healthzURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return "", errors.New("healthcheck: ADDR has no fixed port to ask: give --url")
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		host = "127.0.0.1" // also for [::]: Go listens there on IPv4 too
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: "/healthz"}).String(), nil
}
