// Package migrations owns the schema of cdcq's own Postgres database: the
// versioned SQL files in this directory, embedded into the binary, and the
// functions that apply them with goose. The tables are the read model that
// package projections writes and reads.
//
// Up takes a Postgres session-level advisory lock while it migrates, so any
// number of processes may call it at start-up at the same time.
//
// This package must not import other cdcq packages.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed *.sql
var files embed.FS

// lockWaitSeconds bounds how long Up waits for another process's migration:
// it polls the advisory lock every second, this many times.
const lockWaitSeconds = 300

// Migration is one migration file and whether the database has it.
type Migration struct {
	Version int64
	// Name is the file name, such as "00001_projections.sql".
	Name    string
	Applied bool
	// AppliedAt is zero for a pending migration.
	AppliedAt time.Time
}

// Up applies every pending migration to the database at databaseURL. A
// database that is already current is left alone.
func Up(ctx context.Context, databaseURL string) error {
	return withProvider(databaseURL, func(p *goose.Provider) error {
		if _, err := p.Up(ctx); err != nil {
			return fmt.Errorf("migrations: apply: %w", err)
		}
		return nil
	})
}

// Status lists the embedded migrations in version order, each with whether
// the database at databaseURL has applied it.
func Status(ctx context.Context, databaseURL string) ([]Migration, error) {
	var out []Migration
	err := withProvider(databaseURL, func(p *goose.Provider) error {
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrations: status: %w", err)
		}
		for _, s := range st {
			out = append(out, Migration{
				Version:   s.Source.Version,
				Name:      path.Base(s.Source.Path),
				Applied:   s.State == goose.StateApplied,
				AppliedAt: s.AppliedAt,
			})
		}
		return nil
	})
	return out, err
}

func withProvider(databaseURL string, fn func(*goose.Provider) error) (err error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors redact the password; the URL is not repeated here.
		return fmt.Errorf("migrations: parse database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("migrations: close database: %w", cerr)
		}
	}()
	p, err := newProvider(db)
	if err != nil {
		return err
	}
	return fn(p)
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, lockWaitSeconds))
	if err != nil {
		return nil, fmt.Errorf("migrations: session locker: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(slog.Default()),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: new provider: %w", err)
	}
	if len(p.ListSources()) == 0 {
		return nil, errors.New("migrations: no migration files embedded")
	}
	return p, nil
}
