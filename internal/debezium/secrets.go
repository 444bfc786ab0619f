package debezium

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cdcq/cdcq/internal/atomicfile"
)

// ConfigProviderName is the name under which Kafka Connect workers must
// configure Kafka's DirectoryConfigProvider for Config.SecretsDir:
//
//	config.providers=dir
//	config.providers.dir.class=org.apache.kafka.common.config.provider.DirectoryConfigProvider
//	config.providers.dir.param.allowed.paths=<SecretsDir>
const ConfigProviderName = "dir"

// passwordKey is the connector configuration key of the source password.
const passwordKey = "database.password"

// secretFileMode lets only the owner read a password file: Kafka Connect
// must run as the same user as cdcq's workers.
const secretFileMode fs.FileMode = 0o600

// secretStore keeps one password file per connector in a directory that
// Kafka Connect's workers read through DirectoryConfigProvider.
type secretStore struct {
	dir string
}

// checkSecretsDir reports a secrets directory that cannot work: it must be
// an absolute path that ${dir:<path>:<file>} can carry and an existing
// directory.
func checkSecretsDir(dir string) error {
	// ${dir:<path>:<file>} ends the path at the first ':' and the
	// reference at the first '}'; allowed.paths is a comma-separated list.
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, ":}$,") {
		return fmt.Errorf("debezium: secrets directory %q must be an absolute path without ':', '}', '$' or ','", dir)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("debezium: secrets directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("debezium: secrets directory %s is not a directory", dir)
	}
	return nil
}

// SecretFileName is the name of the file that holds the password of
// connector: the connector name with every character but ASCII letters,
// digits, '-' and '_' replaced by '_', and, when that changed anything, a
// hash of the original name so that two names never share a file.
func SecretFileName(connector string) string {
	var b strings.Builder
	changed := false
	for _, r := range connector {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('_')
		changed = true
	}
	if changed || b.Len() == 0 {
		sum := sha256.Sum256([]byte(connector))
		b.WriteString("-" + hex.EncodeToString(sum[:6]))
	}
	return b.String() + ".password"
}

// reference is the connector configuration value that Kafka Connect
// resolves to the content of file.
func (s secretStore) reference(file string) string {
	return "${" + ConfigProviderName + ":" + s.dir + ":" + file + "}"
}

func (s secretStore) path(file string) string { return filepath.Join(s.dir, file) }

// restartMarker names the file that says a rewritten password has not yet
// reached the connector's running tasks.
func (s secretStore) restartMarker(file string) string {
	return filepath.Join(s.dir, "."+file+".restart")
}

// write makes file hold password, atomically (temporary file, fsync,
// rename), with mode 0600. When it changes a file that existed, it first
// leaves a restart marker (see restartPending). Errors name the file,
// never the password.
func (s secretStore) write(file, password string) error {
	path := s.path(file)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, []byte(password)):
		return s.tighten(path)
	case err == nil:
		if err := atomicfile.Write(s.restartMarker(file), nil, secretFileMode); err != nil {
			return fmt.Errorf("mark password file %s for a connector restart: %w", path, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read password file %s: %w", path, err)
	}
	if err := atomicfile.Write(path, []byte(password), secretFileMode); err != nil {
		return fmt.Errorf("write password file %s: %w", path, err)
	}
	return nil
}

// tighten restores mode 0600 on a file someone widened.
func (s secretStore) tighten(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat password file %s: %w", path, err)
	}
	if st.Mode().Perm() != secretFileMode {
		if err := os.Chmod(path, secretFileMode); err != nil {
			return fmt.Errorf("restrict password file %s: %w", path, err)
		}
	}
	return nil
}

// restartPending reports whether file was rewritten since its connector
// was last (re)started.
func (s secretStore) restartPending(file string) bool {
	_, err := os.Stat(s.restartMarker(file))
	return err == nil
}

// restarted clears the restart marker of file.
func (s secretStore) restarted(file string) error {
	if err := os.Remove(s.restartMarker(file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("clear restart marker of %s: %w", s.path(file), err)
	}
	return nil
}

// remove deletes file and its restart marker; a missing file is no error.
func (s secretStore) remove(file string) error {
	for _, p := range []string{s.path(file), s.restartMarker(file)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove password file: %w", err)
		}
	}
	return nil
}
