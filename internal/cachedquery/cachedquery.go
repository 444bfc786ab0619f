// Package cachedquery turns what a caller sends for a cached query, a
// Prisma schema and an aggregate SQL query, into the logical plan the query
// processors run, and the normalised query text its id is derived from.
// The API uses it to answer bad input with 422 before publishing; the
// worker uses it again, since commands may be published directly.
//
// A query is accepted only if both engines can maintain it with
// PostgreSQL's answer (the embedded engine, internal/ivm, and the Flink
// translation, internal/flinksql): which engine runs a query is a
// deployment's choice, never the query's, so what one engine cannot run is
// refused here rather than accepted and failed later.
//
// It imports prismaschema, sqlplan and the two engines' compilers only.
package cachedquery

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cdcq/cdcq/internal/flinksql"
	"github.com/cdcq/cdcq/internal/ivm"
	"github.com/cdcq/cdcq/internal/prismaschema"
	"github.com/cdcq/cdcq/internal/sqlplan"
)

// Field names of the problems, as the API names its fields.
const (
	FieldSchema   = "schema"
	FieldSQLQuery = "sqlQuery"
)

// Problem is what is wrong with the input, and where.
type Problem struct {
	// Field is FieldSchema or FieldSQLQuery.
	Field string
	// Line and Column start at 1.
	Line, Column int
	Message      string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s %d:%d: %s", p.Field, p.Line, p.Column, p.Message)
}

// Compiled is a query ready to run.
type Compiled struct {
	Schema *prismaschema.Schema
	Plan   *sqlplan.Plan
	// Normalized is the canonical text of the query: equal for queries that
	// differ only in white space, comments and keyword case.
	Normalized string
}

// Compile parses the schema and compiles the query against it. Its errors
// are *Problem.
func Compile(schemaText, sql string) (*Compiled, error) {
	schema, err := prismaschema.Parse("schema.prisma", []byte(schemaText))
	if err != nil {
		if errs := prismaschema.Errors(err); len(errs) > 0 {
			e := errs[0]
			msg := e.Msg
			if len(errs) > 1 {
				msg += fmt.Sprintf(" (and %d more problems)", len(errs)-1)
			}
			return nil, &Problem{Field: FieldSchema, Line: e.Pos.Line, Column: e.Pos.Column, Message: msg}
		}
		return nil, &Problem{Field: FieldSchema, Line: 1, Column: 1, Message: err.Error()}
	}
	plan, err := sqlplan.Compile(schema, sql)
	if err != nil {
		return nil, sqlProblem(err)
	}
	if err := checkEngines(plan); err != nil {
		return nil, err
	}
	return &Compiled{Schema: schema, Plan: plan, Normalized: plan.Normalized}, nil
}

// checkEngines refuses a plan that one of the engines cannot run. The
// engines' errors carry no position; the problem points at the query's
// start.
func checkEngines(plan *sqlplan.Plan) error {
	if _, err := ivm.New(plan); err != nil {
		return &Problem{Field: FieldSQLQuery, Line: 1, Column: 1,
			Message: "the embedded engine cannot maintain this query: " + strings.TrimPrefix(err.Error(), "ivm: ")}
	}
	// The options only name things; any valid values do.
	_, err := flinksql.Translate(plan, flinksql.Options{
		EnvironmentID: "check", QueryID: "q_check", PipelineName: "check", BootstrapServers: "check:9092",
	})
	var ue *flinksql.UnsupportedError
	if errors.As(err, &ue) {
		return &Problem{Field: FieldSQLQuery, Line: 1, Column: 1, Message: ue.Error()}
	}
	if err != nil {
		return &Problem{Field: FieldSQLQuery, Line: 1, Column: 1, Message: "the Flink engine cannot run this query: " + err.Error()}
	}
	return nil
}

func sqlProblem(err error) error {
	var se *sqlplan.Error
	if errors.As(err, &se) {
		msg := se.Message
		if se.Suggestion != "" {
			msg += fmt.Sprintf("; did you mean %q?", se.Suggestion)
		}
		return &Problem{Field: FieldSQLQuery, Line: se.Line, Column: se.Column, Message: msg}
	}
	return &Problem{Field: FieldSQLQuery, Line: 1, Column: 1, Message: err.Error()}
}
