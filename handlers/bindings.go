package handlers

import (
	"context"
	"errors"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
)

// Bindings keeps the database each environment is bound to: the sealed
// connection string it was created with, or the one that last rotated its
// password. Workers act on the bound connection string, never on a
// command's, so that a command naming another database cannot move an
// environment or make a delete act elsewhere.
//
// A binding is established once the capture engine took the environment
// up (Capture.Ensure returned without a terminal error): from then on the
// source may hold the capture's slot and publication, and only a delete
// frees the environment for another database. A create that failed before
// that (a host that cannot be reached, a refused login) leaves nothing in
// the source, so a create naming another database may replace it.
type Bindings interface {
	// Bound returns the environment's binding; ok is false when none is.
	Bound(ctx context.Context, environmentID string) (b Binding, ok bool, err error)
	// Bind records sealed as the environment's connection string. A new
	// binding is not established; an existing one keeps its state.
	Bind(ctx context.Context, environmentID, sealed string) error
	// Establish marks the environment's binding established.
	Establish(ctx context.Context, environmentID string) error
	// Unbind forgets the environment's connection string (after a delete).
	Unbind(ctx context.Context, environmentID string) error
}

// Binding is an environment's bound connection string (sealed) and
// whether it is established.
type Binding struct {
	Sealed      string
	Established bool
}

// errBoundElsewhere is a command whose connection string names another
// database than the environment's: it changes nothing.
type errBoundElsewhere struct {
	environmentID string
	differ        []string
}

func (e *errBoundElsewhere) Error() string {
	return connstr.DescribeMismatch(e.environmentID, e.differ, "the command's connection string") +
		"; nothing was changed (delete the environment first to capture another database)"
}

// errUnopenable is a command for an environment that exists whose sealed
// value does not open (sealed for another environment, changed, or under
// a key this worker lacks): the command is refused, and the environment's
// status is not its to change.
type errUnopenable struct{ err error }

func (e *errUnopenable) Error() string { return e.err.Error() + "; nothing was changed" }

// isRejected reports a command refused without changing anything: it is
// listed as rejected, not recorded as the environment's failure.
func isRejected(err error) bool {
	var b *errBoundElsewhere
	var u *errUnopenable
	return errors.As(err, &b) || errors.As(err, &u)
}

// binding is an environment's connection as a handler acts on it.
type binding struct {
	// plain is the connection string to act on; sealed is its sealed
	// form, bound to the environment.
	plain, sealed string
	// record is set when sealed is the command's and must be bound:
	// nothing was bound, the bound create never took hold, or the command
	// brings a new password (or other parameters) for the bound database.
	record bool
}

// resolve opens the command's connection string and compares it with the
// bound one. It returns an *errUnopenable for a value that does not open
// when the environment exists (a terminal error when it does not) and an
// *errBoundElsewhere for one that names another database. With
// preferCommand the command's connection string is the one to act on (a
// create: it may rotate the password); otherwise the bound one is.
func resolve(ctx context.Context, cfg WorkerConfig, environmentID string, conn commands.Connection, preferCommand bool) (binding, error) {
	plain, err := conn.Open(cfg.Sealer, environmentID)
	if err != nil {
		reason := jobs.Terminalf("%v (was it sealed for this environment with this deployment's CDCQ_SECRET_KEY?)", err)
		_, bound, berr := cfg.Bindings.Bound(ctx, environmentID)
		switch {
		case berr != nil:
			return binding{}, berr
		case bound:
			return binding{}, &errUnopenable{err: reason}
		}
		return binding{}, reason
	}
	asked, err := connstr.Parse(plain)
	if err != nil {
		return binding{}, jobs.Terminalf("connection string %v", err)
	}
	command := binding{plain: plain, sealed: conn.Sealed, record: true}
	bnd, ok, err := cfg.Bindings.Bound(ctx, environmentID)
	if err != nil || !ok {
		return command, err
	}
	boundPlain, err := cfg.Sealer.Open(bnd.Sealed, environmentID)
	if err != nil {
		return binding{}, jobs.Terminalf("the stored connection string of environment %s: %v", environmentID, err)
	}
	bound, err := connstr.Parse(boundPlain)
	usable := err == nil
	if !usable {
		// Stored by an earlier cdcq with a parameter now refused: it names
		// the bound database, but the command's string (checked when it
		// came in) is the one to act on, and replaces it.
		if bound, err = connstr.StoredIdentity(boundPlain); err != nil {
			return binding{}, jobs.Terminalf("the stored connection string of environment %s %v", environmentID, err)
		}
	}
	if differ := connstr.Differences(bound, asked); len(differ) > 0 {
		if !bnd.Established && preferCommand {
			// A create that never took hold: the command's database
			// replaces it.
			return command, nil
		}
		return binding{}, &errBoundElsewhere{environmentID: environmentID, differ: differ}
	}
	if !usable || preferCommand && boundPlain != plain {
		return command, nil // a rotation
	}
	return binding{plain: boundPlain, sealed: bnd.Sealed}, nil
}
