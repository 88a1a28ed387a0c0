// Command apikeyd is an API key service: signed-in users create, list and
// revoke API keys over GraphQL and REST, and any service asks apikeyd whether
// a key is good.
//
// Usage:
//
//	apikeyd serve                  run the server (migrates first)
//	apikeyd migrate up|down|status manage the database schema
//	apikeyd token --sub USER       mint a login token (JWT) with the configured secret
//	apikeyd scan [PATH…]           find API keys in files (exit 1 when found)
//	apikeyd healthcheck [--url U]  ask a running server's /healthz (exit 1 unless 200)
//	apikeyd backup FILE            copy a live SQLite database to a new file
//
// Each command's flags: apikeyd COMMAND -h. The configuration and the wiring
// live in internal/config and internal/app; this file only reads the command
// line and hands them a typed configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/logsink"
	"github.com/apikeyd/apikeyd/internal/scan"
	"github.com/apikeyd/apikeyd/internal/store"
)

func main() {
	// Logs (a line per request) go to stderr through a buffer, so that no
	// request waits for a write system call; at most logFlushEvery of them
	// is lost if the process dies without returning from run.
	logs := logsink.New(os.Stderr, logFlushEvery)
	log := slog.New(slog.NewJSONHandler(logs, nil))
	err := run(context.Background(), os.Args[1:], os.Stdout, log)
	logs.Close()
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apikeyd:", err)
		os.Exit(1)
	}
}

// exitStatus is an error that only sets the process's exit status: the
// command has already said what it had to.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// logFlushEvery is how long a log line may wait in memory.
const logFlushEvery = 100 * time.Millisecond

const usage = `usage:
  apikeyd serve [flags]                   run the server (see apikeyd serve -h)
  apikeyd migrate up|down|status [flags]  manage the database schema
  apikeyd token --sub USER [--ttl 1h]     print a login token signed with the configured secret
  apikeyd scan [PATH…]                    find API keys in files or - (stdin); exit 1 if any, 2 on error
  apikeyd healthcheck [--url URL]         ask a running server's /healthz; exit 1 unless it answers 200
  apikeyd backup [flags] FILE             copy a live SQLite database to FILE, a new file`

// run executes one command. Help (-h) goes to stdout and is no error.
func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "serve":
		cfg, err := parse(stdout, "serve", config.Serve, args[1:], nil)
		if err != nil {
			return helped(err)
		}
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return app.Serve(ctx, cfg, log, nil)
	case "migrate":
		return migrateCommand(ctx, args[1:], stdout)
	case "token":
		return tokenCommand(args[1:], stdout)
	case "healthcheck":
		return healthcheckCommand(ctx, args[1:], stdout)
	case "backup":
		return backupCommand(ctx, args[1:], stdout)
	case "scan":
		var fs *flag.FlagSet
		cfg, err := parse(stdout, "scan", config.Scan, args[1:], func(f *flag.FlagSet) { fs = f })
		if errors.Is(err, errHelped) {
			return nil
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "apikeyd scan:", err)
			return exitStatus(scan.ExitError)
		}
		if code := scan.Run(ctx, fs.Args(), os.Stdin, stdout, os.Stderr, cfg.KeyPrefix); code != scan.ExitNone {
			return exitStatus(code)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

// errHelped is returned by parse once it has printed the help a user asked
// for: the command stops there, successfully.
var errHelped = errors.New("help printed")

// parse reads the configuration of a command (its scope of settings) from
// the environment and args; extra adds the command's own flags. On -h it
// prints the flags to stdout and returns errHelped.
func parse(stdout io.Writer, name string, scope config.Scope, args []string, extra func(*flag.FlagSet)) (config.Config, error) {
	fs := flag.NewFlagSet("apikeyd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; help is printed below
	if extra != nil {
		extra(fs)
	}
	cfg, err := config.Parse(fs, scope, args, os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: apikeyd %s [flags]\n\nEach flag may be given as the environment variable in parentheses instead.\n\n", name)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return cfg, errHelped
	}
	return cfg, err
}

// migrateCommand runs `apikeyd migrate up|down|status`: it reads the
// database setting only.
func migrateCommand(ctx context.Context, args []string, stdout io.Writer) error {
	const migrateUsage = "usage: apikeyd migrate up|down|status [--database-url URL]"
	if len(args) == 0 {
		return errors.New(migrateUsage)
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, migrateUsage)
		return nil
	}
	action := args[0]
	if action != "up" && action != "down" && action != "status" {
		return fmt.Errorf("unknown migrate action %q: use up, down or status", action)
	}
	cfg, err := parse(stdout, "migrate "+action, config.Migrate, args[1:], nil)
	if err != nil {
		return helped(err)
	}
	db, err := store.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if action != "status" { // never change a SQLite schema under a running server
		lock, err := store.LockSQLite(cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	switch action {
	case "up":
		g, err := store.MigrateUp(ctx, db)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "nothing to migrate: the schema is up to date")
			return nil
		}
		fmt.Fprintf(stdout, "migrated to group %d: %s\n", g.ID, g.Migrations)
	case "down":
		g, err := store.MigrateDown(ctx, db)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "nothing to roll back")
			return nil
		}
		fmt.Fprintf(stdout, "rolled back group %d: %s\n", g.ID, g.Migrations)
	case "status":
		ms, err := store.MigrationStatus(ctx, db)
		if err != nil {
			return err
		}
		for _, mg := range ms {
			state := "pending"
			if mg.IsApplied() {
				state = "applied " + mg.MigratedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s_%s\t%s\n", mg.Name, mg.Comment, state)
		}
	}
	return nil
}

// backupCommand runs `apikeyd backup [--database-url URL] FILE`: it reads
// the database setting only.
func backupCommand(ctx context.Context, args []string, stdout io.Writer) error {
	const backupUsage = "usage: apikeyd backup [--database-url URL] FILE"
	var fs *flag.FlagSet
	cfg, err := parse(stdout, "backup", config.Backup, args, func(f *flag.FlagSet) { fs = f })
	if errors.Is(err, errHelped) {
		fmt.Fprintln(stdout, "\nFILE is a new file, which the consistent copy of the live SQLite database is written to.\nFor PostgreSQL use pg_dump.")
		return nil
	}
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(backupUsage)
	}
	to := fs.Arg(0)
	if err := store.Backup(ctx, cfg.DatabaseURL, to); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", store.Describe(cfg.DatabaseURL), to)
	return nil
}

// tokenCommand runs `apikeyd token --sub USER [--ttl 1h]`: it reads the
// database and token settings only.
func tokenCommand(args []string, stdout io.Writer) error {
	var sub string
	var ttl time.Duration
	cfg, err := parse(stdout, "token", config.Token, args, func(fs *flag.FlagSet) {
		fs.StringVar(&sub, "sub", "", "user id to put in the token (required)")
		fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	})
	if err != nil {
		return helped(err)
	}
	if sub == "" {
		return errors.New("usage: apikeyd token --sub USER [--ttl 1h]")
	}
	if cfg.JWKSURL != nil {
		return errors.New("JWT_JWKS_URL is set: tokens come from the identity provider, not apikeyd")
	}
	secret, err := app.TokenSecret(cfg)
	if err != nil {
		return err
	}
	tok, err := auth.MintToken(secret, sub, ttl, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// helped turns errHelped into success.
func helped(err error) error {
	if errors.Is(err, errHelped) {
		return nil
	}
	return err
}
