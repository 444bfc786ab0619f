package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/cdcq/cdcq/commands"
	"github.com/cdcq/cdcq/internal/connstr"
	"github.com/cdcq/cdcq/internal/jobs"
	"github.com/cdcq/cdcq/internal/names"
	"github.com/cdcq/cdcq/internal/secret"
	"github.com/cdcq/cdcq/projections"
)

var connectionFields = []string{fieldConnectionString, fieldEnvironmentID}

// ConnectionAccepted answers createDatabaseConnection and
// deleteDatabaseConnection. Connection (the redacted connection string) is
// set by create only.
type ConnectionAccepted struct {
	// ID is the environmentId, as in the original API.
	ID string `json:"id"`
	// Name is the capture's connector name.
	Name          string      `json:"name"`
	Status        jobs.Status `json:"status"`
	EnvironmentID string      `json:"environmentId"`
	CommandID     string      `json:"commandId"`
	Connection    string      `json:"connection,omitempty"`
}

// connectionRequest is a validated connection body.
type connectionRequest struct {
	env  string
	conn connstr.Conn
}

func (s *Server) readConnectionRequest(c *fiber.Ctx, fields []string) (requestBody, connectionRequest, error) {
	body, err := decodeBody(c, fields)
	if err != nil {
		return body, connectionRequest{}, err
	}
	conn, err := parseConnection(body.ConnectionString)
	if err != nil {
		return body, connectionRequest{}, err
	}
	if err := checkEnvironmentID(body.EnvironmentID); err != nil {
		return body, connectionRequest{}, err
	}
	c.Locals(keyEnvironmentID, body.EnvironmentID)
	return body, connectionRequest{env: body.EnvironmentID, conn: conn}, nil
}

// sealed is the form of a connection that commands carry: the plaintext is
// sealed here, bound to its environment, and kept nowhere else.
func (s *Server) sealed(env string, conn connstr.Conn) commands.Connection {
	return commands.Connection{Sealed: s.cfg.Sealer.Seal(conn.String(), env), Redacted: conn.Redacted()}
}

// rebindAdvice ends the 409 of a create that names another database.
const rebindAdvice = "; an environment stays bound to the database it was created with: to capture another one, " +
	"delete this environment with deleteDatabaseConnection first (or use another environmentId)"

func (s *Server) meta(env string) commands.Meta {
	return commands.Meta{CommandID: s.cfg.NewID(), EnvironmentID: env, RequestedAt: s.cfg.Now().UTC()}
}

func (s *Server) publish(c *fiber.Ctx, cmd commands.Command) error {
	c.Locals(keyCommand, cmd.CommandName())
	c.Locals(keyCommandID, cmd.CommandMeta().CommandID)
	ctx, cancel := s.backendContext(c)
	defer cancel()
	if err := s.cfg.Commands.Publish(ctx, cmd); err != nil {
		return &apiError{
			status: http.StatusServiceUnavailable,
			detail: ErrorDetail{Code: CodePublishFailed, Message: "the command could not be published; nothing was changed, try again"},
			cause:  fmt.Errorf("publish %s: %w", cmd.CommandName(), err),
		}
	}
	return nil
}

// createDatabaseConnection publishes CreateDatabaseConnection. Repeating it
// is harmless: the handler brings the capture to the same configuration.
func (s *Server) createDatabaseConnection(c *fiber.Ctx) error {
	_, req, err := s.readConnectionRequest(c, connectionFields)
	if err != nil {
		return err
	}
	if err := s.checkBinding(c, req, true, rebindAdvice); err != nil {
		return err
	}
	cmd := commands.CreateDatabaseConnection{Meta: s.meta(req.env), Connection: s.sealed(req.env, req.conn)}
	if err := s.publish(c, cmd); err != nil {
		return err
	}
	c.Location("/connections/" + req.env)
	return c.Status(http.StatusCreated).JSON(ConnectionAccepted{
		ID:            req.env,
		Name:          names.ConnectorName(req.env),
		Status:        jobs.StatusPending,
		EnvironmentID: req.env,
		CommandID:     cmd.CommandID,
		Connection:    cmd.Connection.Redacted,
	})
}

// deleteDatabaseConnection publishes DeleteDatabaseConnection; the work goes
// on after the 202.
func (s *Server) deleteDatabaseConnection(c *fiber.Ctx) error {
	_, req, err := s.readConnectionRequest(c, connectionFields)
	if err != nil {
		return err
	}
	if err := s.checkBinding(c, req, false, "; nothing was deleted: send the connection string the environment was created with"); err != nil {
		return err
	}
	cmd := commands.DeleteDatabaseConnection{Meta: s.meta(req.env), Connection: s.sealed(req.env, req.conn)}
	if err := s.publish(c, cmd); err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(ConnectionAccepted{
		ID:            req.env,
		Name:          names.ConnectorName(req.env),
		Status:        jobs.StatusDeleting,
		EnvironmentID: req.env,
		CommandID:     cmd.CommandID,
	})
}

// checkJobStatus answers the environment's projected state. The caller must
// name the database the environment captures; only redacted forms are
// compared, so the password is not checked.
func (s *Server) checkJobStatus(c *fiber.Ctx) error {
	_, req, err := s.readConnectionRequest(c, connectionFields)
	if err != nil {
		return err
	}
	view, err := s.connectionView(c, req.env)
	if err != nil {
		return err
	}
	if differ := connectionDifferences(view.Connection, req.conn); len(differ) > 0 {
		return mismatch(req.env, differ, "")
	}
	return c.JSON(view)
}

func (s *Server) getConnection(c *fiber.Ctx) error {
	env := strings.Clone(c.Params("environmentId"))
	if err := checkEnvironmentID(env); err != nil {
		return err
	}
	c.Locals(keyEnvironmentID, env)
	view, err := s.connectionView(c, env)
	if err != nil {
		return err
	}
	return c.JSON(view)
}

func (s *Server) connectionView(c *fiber.Ctx, env string) (projections.ConnectionView, error) {
	ctx, cancel := s.backendContext(c)
	defer cancel()
	view, err := s.cfg.Status.Connection(ctx, env)
	switch {
	case errors.Is(err, projections.ErrNotFound):
		return view, newError(http.StatusNotFound, CodeNotFound, fieldEnvironmentID,
			fmt.Sprintf("there is no database connection for environmentId %s; create one with POST /createDatabaseConnection", env))
	case err != nil:
		return view, statusUnavailable(fmt.Errorf("read connection %s: %w", env, err))
	}
	return view, nil
}

func statusUnavailable(cause error) error {
	return &apiError{
		status: http.StatusServiceUnavailable,
		detail: ErrorDetail{Code: CodeStatusUnavailable, Message: "job status cannot be read right now; try again"},
		cause:  cause,
	}
}

// connectionDifferences names the parts (host, port, database, user) in
// which the stored redacted connection and the requested one differ. A
// stored form that does not parse (not yet recorded) is not compared.
func connectionDifferences(storedRedacted string, requested connstr.Conn) []string {
	stored, err := connstr.Parse(storedRedacted)
	if err != nil {
		return nil
	}
	return connstr.Differences(stored, requested)
}

// mismatch is the 409 for a connection string that names another database
// than the one the environment is bound to.
func mismatch(env string, differ []string, then string) error {
	return newError(http.StatusConflict, CodeConnectionMismatch, fieldConnectionString,
		connstr.DescribeMismatch(env, differ, "connectionString's")+then)
}

// checkBinding refuses a command for an environment that is bound to
// another database. An environment that does not exist, or was deleted, is
// bound to nothing. A new password for the same database passes: it
// rotates the stored one. With rebind, a binding that is not established
// (its create failed before the engine took it up) gives way.
func (s *Server) checkBinding(c *fiber.Ctx, req connectionRequest, rebind bool, then string) error {
	ctx, cancel := s.backendContext(c)
	defer cancel()
	bound, established, ok, err := s.cfg.Bindings.Binding(ctx, req.env)
	switch {
	case errors.Is(err, secret.ErrUnknownKey):
		// Retrying does not help: this process lacks the key.
		return &apiError{
			status: http.StatusServiceUnavailable,
			detail: ErrorDetail{Code: CodeStatusUnavailable, Message: fmt.Sprintf(
				"the connection string stored for environment %s does not open with this API's keys; an operator must give it the key that sealed it (CDCQ_SECRET_KEY or CDCQ_SECRET_KEYS_PREVIOUS)", req.env)},
			cause: fmt.Errorf("read the binding of %s: %w", req.env, err),
		}
	case err != nil:
		return statusUnavailable(fmt.Errorf("read the binding of %s: %w", req.env, err))
	case !ok || (rebind && !established):
		return nil
	}
	if differ := connstr.Differences(bound, req.conn); len(differ) > 0 {
		return mismatch(req.env, differ, then)
	}
	return nil
}
