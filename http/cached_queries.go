package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/projections"
)

var cachedQueryFields = []string{fieldConnectionString, fieldEnvironmentID, fieldSchema, fieldSQLQuery}

// CachedQueryAccepted answers createCachedQuery.
type CachedQueryAccepted struct {
	// ID is the query id; the same environment, schema and query give the
	// same id.
	ID string `json:"id"`
	// Name is the query job's pipeline name.
	Name          string      `json:"name"`
	Status        jobs.Status `json:"status"`
	EnvironmentID string      `json:"environmentId"`
	CommandID     string      `json:"commandId"`
}

// createCachedQuery publishes CreateCachedQuery. The query id is derived
// from the input, so repeating the request names the same query and the
// handler finds the job it started before.
func (s *Server) createCachedQuery(c *fiber.Ctx) error {
	body, req, err := s.readConnectionRequest(c, cachedQueryFields)
	if err != nil {
		return err
	}
	normalized, err := s.cfg.CheckQuery(body.Schema, body.SQLQuery)
	if err != nil {
		return queryProblem(err)
	}
	if err := s.checkBinding(c, req, true, rebindAdvice); err != nil {
		return err
	}
	queryID := names.QueryID(req.env, body.Schema, normalized)
	c.Locals(keyQueryID, queryID)
	cmd := commands.CreateCachedQuery{
		Meta:       s.meta(req.env),
		Connection: s.sealed(req.env, req.conn),
		QueryID:    queryID,
		Schema:     body.Schema,
		SQLQuery:   body.SQLQuery,
	}
	if err := s.publish(c, cmd); err != nil {
		return err
	}
	c.Location("/cachedQueries/" + queryID)
	return c.Status(http.StatusCreated).JSON(CachedQueryAccepted{
		ID:            queryID,
		Name:          names.PipelineName(req.env, queryID),
		Status:        jobs.StatusPending,
		EnvironmentID: req.env,
		CommandID:     cmd.CommandID,
	})
}

// queryProblem turns a schema or query error into a 422 that says what and
// where.
func queryProblem(err error) error {
	var qe *QueryError
	if !errors.As(err, &qe) {
		qe = &QueryError{Field: fieldSQLQuery, Message: err.Error()}
	}
	code := CodeInvalidSQLQuery
	if qe.Field == fieldSchema {
		code = CodeInvalidSchema
	}
	e := unprocessable(code, qe.Field, qe.Message)
	if qe.Line > 0 {
		e.detail.Message = fmt.Sprintf("%s at line %d, column %d: %s", qe.Field, qe.Line, qe.Column, qe.Message)
		e.detail.Line, e.detail.Column = qe.Line, qe.Column
	}
	return e
}

// CachedQueryDetail answers GET /cachedQueries/{id}: the query's
// definition and job, and for a materialised result how far it has read
// (its rows are at /result).
type CachedQueryDetail struct {
	projections.QueryView
	Progress *QueryResult `json:"progress,omitempty"`
}

func (s *Server) getCachedQuery(c *fiber.Ctx) error {
	if s.cfg.Results == nil {
		view, err := s.lookUpQuery(c)
		if err != nil {
			return err
		}
		return c.JSON(CachedQueryDetail{QueryView: view})
	}
	res, err := s.result(c)
	if err != nil {
		return err
	}
	out := CachedQueryDetail{QueryView: res.Query()}
	if meta := res.Meta(); meta.State != StateStarting {
		out.Progress = &meta
	}
	return c.JSON(out)
}

// CachedQueryDeleting answers DELETE /cachedQueries/{id}.
type CachedQueryDeleting = CachedQueryAccepted

// deleteCachedQuery publishes DeleteCachedQuery for a known query.
func (s *Server) deleteCachedQuery(c *fiber.Ctx) error {
	view, err := s.lookUpQuery(c)
	if err != nil {
		return err
	}
	cmd := commands.DeleteCachedQuery{Meta: s.meta(view.EnvironmentID), QueryID: view.ID}
	if err := s.publish(c, cmd); err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(CachedQueryDeleting{
		ID:            view.ID,
		Name:          view.Name,
		Status:        jobs.StatusDeleting,
		EnvironmentID: view.EnvironmentID,
		CommandID:     cmd.CommandID,
	})
}

// lookUpQuery finds the query named in the path, answering 404 when there
// is none.
func (s *Server) lookUpQuery(c *fiber.Ctx) (projections.QueryView, error) {
	id := strings.Clone(c.Params("queryId"))
	ctx, cancel := s.backendContext(c)
	defer cancel()
	view, err := s.cfg.Status.CachedQuery(ctx, id)
	switch {
	case errors.Is(err, projections.ErrNotFound):
		return view, newError(http.StatusNotFound, CodeNotFound, "id", fmt.Sprintf("there is no cached query with id %q", id))
	case err != nil:
		return view, statusUnavailable(fmt.Errorf("read cached query %s: %w", id, err))
	}
	c.Locals(keyQueryID, id)
	c.Locals(keyEnvironmentID, view.EnvironmentID)
	return view, nil
}
