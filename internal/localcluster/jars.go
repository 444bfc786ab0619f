package localcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Pinned versions. Changing one re-resolves the jars at the next Up.
const (
	KafkaVersion    = "4.3.0"
	DebeziumVersion = "3.6.1.Final"
	FlinkVersion    = "1.20.3"
	// FlinkKafkaConnectorVersion is the Flink Kafka connector built for
	// FlinkVersion.
	FlinkKafkaConnectorVersion = "3.4.0-1.20"
	log4jVersion               = "2.24.3"
	// slf4jVersion must be 2.x: without it Maven picks 1.7.36, with which
	// log4j-slf4j2-impl logs nothing.
	slf4jVersion = "2.0.17"
)

// jarSet is one directory of jars and the Maven coordinates resolved into it
// with their runtime dependencies.
type jarSet struct {
	name string
	// dir is relative to the jar directory.
	dir       string
	artifacts []string // groupId:artifactId:version
	// excludeGroups are left out: the Debezium plugin runs inside Connect,
	// whose Kafka and SLF4J classes it must use.
	excludeGroups []string
	// artifactsOnly leaves out the artifacts' dependencies: a jar added to
	// another set's class path, whose dependencies that set has.
	artifactsOnly bool
}

var kafkaLogging = []string{
	"org.apache.logging.log4j:log4j-slf4j2-impl:" + log4jVersion,
	"org.apache.logging.log4j:log4j-core:" + log4jVersion,
	"org.slf4j:slf4j-api:" + slf4jVersion,
}

func flinkArtifacts() []string {
	var a []string
	// Never flink-table-planner_2.12 as well: the loader carries the planner
	// in a class loader of its own, and Flink supports one or the other on
	// the class path, not both.
	for _, n := range []string{
		"flink-runtime", "flink-clients", "flink-streaming-java", "flink-connector-base",
		"flink-table-api-java-bridge", "flink-table-runtime", "flink-table-planner-loader",
		"flink-json", "flink-sql-gateway",
	} {
		a = append(a, "org.apache.flink:"+n+":"+FlinkVersion)
	}
	return append(a,
		"org.apache.flink:flink-connector-kafka:"+FlinkKafkaConnectorVersion,
		"org.apache.logging.log4j:log4j-slf4j-impl:"+log4jVersion,
		"org.apache.logging.log4j:log4j-core:"+log4jVersion,
		"org.apache.logging.log4j:log4j-1.2-api:"+log4jVersion,
	)
}

// jarSets are the cluster's jars: one lib directory for Kafka, one for
// Connect, one shared by the JobManager, TaskManager and SQL Gateway, and
// the Debezium plugin.
var jarSets = []jarSet{
	{name: "kafka", dir: "lib/kafka", artifacts: append([]string{"org.apache.kafka:kafka_2.13:" + KafkaVersion}, kafkaLogging...)},
	{name: "connect", dir: "lib/connect", artifacts: append([]string{
		"org.apache.kafka:connect-runtime:" + KafkaVersion, "org.apache.kafka:connect-json:" + KafkaVersion,
	}, kafkaLogging...)},
	{name: "flink", dir: "lib/flink", artifacts: flinkArtifacts()},
	{
		name: "debezium-postgres", dir: "plugins/debezium-postgres",
		artifacts:     []string{"io.debezium:debezium-connector-postgres:" + DebeziumVersion},
		excludeGroups: []string{"org.apache.kafka", "org.slf4j"},
	},
	// Connect's basic-authentication REST extension, on the cluster's
	// Connect class path after lib/connect (a set of its own, so that
	// lib/connect, which other checkouts share, stays as it is).
	{
		name: "connect-rest-auth", dir: "lib/connect-rest-auth",
		artifacts:     []string{"org.apache.kafka:connect-basic-auth-extension:" + KafkaVersion},
		artifactsOnly: true,
	},
}

// pom is a packaging-pom project that depends on the set's artifacts; Maven's
// dependency plugin copies them and their runtime dependencies.
func (s jarSet) pom() string {
	var b strings.Builder
	b.WriteString(`<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>cdcq.localcluster</groupId>
  <artifactId>` + s.name + `</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
`)
	for _, a := range s.artifacts {
		p := strings.Split(a, ":")
		fmt.Fprintf(&b, "    <dependency><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version></dependency>\n", p[0], p[1], p[2])
	}
	b.WriteString("  </dependencies>\n</project>\n")
	return b.String()
}

// mavenArgs are mvn's arguments for copying the set into outDir.
func (s jarSet) mavenArgs(pomPath, outDir string) []string {
	args := []string{
		"-q", "-B", "-Dstyle.color=never", "-f", pomPath,
		"dependency:copy-dependencies", "-DoutputDirectory=" + outDir, "-DincludeScope=runtime",
	}
	if len(s.excludeGroups) > 0 {
		args = append(args, "-DexcludeGroupIds="+strings.Join(s.excludeGroups, ","))
	}
	if s.artifactsOnly {
		args = append(args, "-DexcludeTransitive=true")
	}
	return args
}

// markerFile, in a resolved directory, holds the hash of the pom it was
// resolved from.
const markerFile = ".cdcq-pom.sha256"

func (s jarSet) hash() string {
	sum := sha256.Sum256([]byte(s.pom() + strings.Join(s.mavenArgs("", ""), " ")))
	return hex.EncodeToString(sum[:])
}

// SharedJarDir is the per-user directory where tests keep resolved jars
// ($XDG_CACHE_HOME/cdcq/localcluster, usually ~/.cache/cdcq/localcluster),
// so that every test binary's cluster uses one copy.
func SharedJarDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("localcluster: user cache directory: %w", err)
	}
	return filepath.Join(d, "cdcq", "localcluster"), nil
}

// resolveJars brings every jar set up to date: a set is resolved when its
// directory has no marker with its pom's hash. Resolution happens in a
// staging directory that replaces the old one, under a lock on the jar
// directory.
func resolveJars(ctx context.Context, l layout, cfg Config) error {
	var stale []jarSet
	for _, s := range jarSets {
		if !s.upToDate(l) {
			stale = append(stale, s)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	mvn, err := lookPath("Maven", cfg.Maven)
	if err != nil {
		return err
	}
	unlock, err := lockFile(ctx, filepath.Join(l.jarDir, "lib", ".lock"))
	if err != nil {
		return fmt.Errorf("localcluster: lock jar directory %s: %w", l.jarDir, err)
	}
	defer unlock()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2) // each mvn is a JVM; more than two only queue for the cores
	for _, s := range stale {
		g.Go(func() error {
			if s.upToDate(l) { // another process resolved it while we waited
				return nil
			}
			t0 := time.Now()
			if err := s.resolve(gctx, l, mvn); err != nil {
				return err
			}
			fmt.Fprintf(cfg.Progress, "resolved %s jars (%.1fs)\n", s.name, time.Since(t0).Seconds())
			return nil
		})
	}
	return g.Wait()
}

func (s jarSet) upToDate(l layout) bool {
	b, err := os.ReadFile(filepath.Join(l.jarDir, s.dir, markerFile))
	return err == nil && strings.TrimSpace(string(b)) == s.hash()
}

func (s jarSet) resolve(ctx context.Context, l layout, mvn string) error {
	work := filepath.Join(l.jarDir, ".maven", s.name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: %w", s.name, err)
	}
	pomPath := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pomPath, []byte(s.pom()), 0o644); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: write pom: %w", s.name, err)
	}
	final := filepath.Join(l.jarDir, s.dir)
	staging := final + ".resolving"
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: %w", s.name, err)
	}
	cmd := exec.CommandContext(ctx, mvn, s.mavenArgs(pomPath, staging)...)
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars (%s %s): %w\n%s", s.name, mvn, strings.Join(cmd.Args[1:], " "), err, lastLines(out.String(), 30))
	}
	if err := os.WriteFile(filepath.Join(staging, markerFile), []byte(s.hash()+"\n"), 0o644); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: %w", s.name, err)
	}
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: remove old jars: %w", s.name, err)
	}
	if err := os.Rename(staging, final); err != nil {
		return fmt.Errorf("localcluster: resolve %s jars: %w", s.name, err)
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting while another process
// holds it (a concurrent Up), until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("another process holds %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// lastLines is the end of a text, at most n lines.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
