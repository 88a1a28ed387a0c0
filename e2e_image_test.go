package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/apikeyd/apikeyd/internal/testenv"
)

// The container image (Dockerfile) and the compose file (compose.yaml).
// No container runtime is needed: TestImage builds the binary as the
// Dockerfile does and runs it as the image would, TestImageFiles checks
// what the two files promise.

// dockerfile is what the tests read of the Dockerfile.
type dockerfile struct {
	build      string            // the build stage's build command
	binary     string            // where the final stage has the binary
	user       string            // USER of the final stage, uid:gid
	env        map[string]string // ENV of the final stage
	workdir    string            // WORKDIR of the final stage
	volume     string            // VOLUME of the final stage
	expose     string            // EXPOSE of the final stage
	healthcmd  []string          // HEALTHCHECK's command
	entrypoint []string
	cmd        []string // CMD: the arguments of ENTRYPOINT
	from       []string // each stage's FROM
	copies     []string // the final stage's COPY arguments
}

// readDockerfile reads the instructions of the Dockerfile: comment lines
// dropped, continuation lines joined.
func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := dockerfile{env: map[string]string{}}
	var line strings.Builder
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || l == "" && line.Len() == 0 {
			continue
		}
		if more, ok := strings.CutSuffix(l, `\`); ok {
			line.WriteString(more + " ")
			continue
		}
		line.WriteString(l)
		keyword, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		args = strings.Join(strings.Fields(args), " ")
		switch strings.ToUpper(keyword) {
		case "FROM":
			d.from = append(d.from, args)
			d.copies = nil
		case "RUN":
			if i := strings.Index(args, "./scripts/build"); i >= 0 {
				d.build = args[i:]
			}
		case "COPY":
			d.copies = append(d.copies, args)
		case "USER":
			d.user = args
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, _ := strings.Cut(kv, "=")
				d.env[k] = v
			}
		case "WORKDIR":
			d.workdir = args
		case "VOLUME":
			d.volume = args
		case "EXPOSE":
			d.expose = args
		case "HEALTHCHECK":
			_, cmd, _ := strings.Cut(args, "CMD ")
			d.healthcmd = execForm(t, cmd)
		case "ENTRYPOINT":
			d.entrypoint = execForm(t, args)
		case "CMD":
			d.cmd = execForm(t, args)
		}
	}
	// The binary is where the final stage copies the build's output to.
	if build := strings.Fields(d.build); len(build) > 0 {
		for _, c := range d.copies {
			if f := strings.Fields(c); len(f) == 3 && f[0] == "--from=build" && f[1] == build[len(build)-1] {
				d.binary = f[2]
			}
		}
	}
	return d
}

// execForm parses an instruction's JSON (exec) form.
func execForm(t *testing.T, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil {
		t.Fatalf("Dockerfile: %q is not in exec form: %v", s, err)
	}
	return args
}

// TestImageFiles: the Dockerfile builds with scripts/build and runs the
// binary it built, as a non-root user, with the database in a volume and a
// health check; the compose file runs two servers of that image on one
// PostgreSQL and one Redis with one JWT secret, published on loopback only.
func TestImageFiles(t *testing.T) {
	d := readDockerfile(t)
	if len(d.from) != 2 || d.from[0] != "golang:1.26 AS build" || !strings.HasPrefix(d.from[1], "gcr.io/distroless/static-debian12:") {
		t.Errorf("stages: %q, want golang:1.26 AS build, then distroless/static", d.from)
	}
	if d.build != "./scripts/build /out/apikeyd" {
		t.Errorf("the build stage builds with %q, want ./scripts/build /out/apikeyd", d.build)
	}
	if d.binary == "" || len(d.entrypoint) != 1 || d.entrypoint[0] != d.binary || strings.Join(d.cmd, " ") != "serve" {
		t.Errorf("ENTRYPOINT %q, CMD %q: want the binary built (%q), serve", d.entrypoint, d.cmd, d.binary)
	}
	if strings.Join(d.healthcmd, " ") != d.binary+" healthcheck" {
		t.Errorf("HEALTHCHECK runs %q, want %s healthcheck", d.healthcmd, d.binary)
	}
	if uid, _, _ := strings.Cut(d.user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: the server must not run as root", d.user)
	}
	const data = "/data"
	if d.env["DATABASE_URL"] != "file:"+data+"/apikeyd.db" || d.workdir != data || d.volume != data {
		t.Errorf("DATABASE_URL %q, WORKDIR %q, VOLUME %q: want the database in the volume %s", d.env["DATABASE_URL"], d.workdir, d.volume, data)
	}
	owned := false
	for _, c := range d.copies {
		owned = owned || strings.HasPrefix(c, "--from=build --chown="+d.user+" ") && strings.HasSuffix(c, " "+data)
	}
	if !owned {
		t.Errorf("no COPY gives %s to the user %s: %q", data, d.user, d.copies)
	}
	_, port, err := net.SplitHostPort(d.env["ADDR"])
	if err != nil || d.env["ADDR"] != "0.0.0.0:"+port || d.expose != port {
		t.Errorf("ADDR %q, EXPOSE %q: want the server on every address of the container, at the port exposed", d.env["ADDR"], d.expose)
	}

	// compose.yaml: two servers, their settings known to apikeyd and the
	// same for both, on PostgreSQL once it is healthy.
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       string
			Image       string
			Environment map[string]string
			Ports       []string
			DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
			Healthcheck struct{ Test []string }
			Volumes     []string
		}
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var help bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, &help, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	servers, ports := []string{"apikeyd-1", "apikeyd-2"}, map[string]bool{}
	for _, name := range servers {
		s, ok := compose.Services[name]
		if !ok {
			t.Fatalf("compose.yaml has no service %s", name)
		}
		if s.Build != "." || s.DependsOn["postgres"].Condition != "service_healthy" || s.DependsOn["redis"].Condition != "service_healthy" {
			t.Errorf("%s: build %q, depends on %+v: want the image of . once postgres and redis are healthy", name, s.Build, s.DependsOn)
		}
		if r := s.Environment["REDIS_URL"]; !strings.HasPrefix(r, "redis://redis:6379") || r != compose.Services[servers[0]].Environment["REDIS_URL"] {
			t.Errorf("%s: REDIS_URL %q, want the redis service's, the same for both servers", name, r)
		}
		for k := range s.Environment {
			if !strings.Contains(help.String(), "("+k+")") {
				t.Errorf("%s: %s is no setting of apikeyd serve", name, k)
			}
		}
		if db := s.Environment["DATABASE_URL"]; !strings.HasPrefix(db, "postgres://") || !strings.Contains(db, "@postgres:5432/") || db != compose.Services[servers[0]].Environment["DATABASE_URL"] {
			t.Errorf("%s: DATABASE_URL %q, want the postgres service's, the same for both servers", name, db)
		}
		if js := s.Environment["JWT_SECRET"]; !strings.HasPrefix(js, "${JWT_SECRET:?") || js != compose.Services[servers[0]].Environment["JWT_SECRET"] {
			t.Errorf("%s: JWT_SECRET %q, want ${JWT_SECRET:?…}, the same for both servers", name, js)
		}
		if len(s.Ports) != 1 {
			t.Errorf("%s publishes %q, want one port", name, s.Ports)
		}
		for _, p := range s.Ports {
			f := strings.Split(p, ":")
			if len(f) != 3 || f[0] != "127.0.0.1" || f[2] != d.expose || ports[f[1]] {
				t.Errorf("%s publishes %q, want a port of its own on 127.0.0.1, to the container's %s", name, p, d.expose)
			}
			ports[f[1]] = true
		}
	}
	pg := compose.Services["postgres"]
	if pg.Image != "postgres:15" || len(pg.Healthcheck.Test) == 0 || len(pg.Volumes) == 0 || len(pg.Ports) != 0 {
		t.Errorf("postgres: %+v, want postgres:15 with a health check, a volume, and no published port", pg)
	}
	if r, ok := compose.Services["redis"]; !ok || len(r.Healthcheck.Test) == 0 || len(r.Ports) != 0 {
		t.Errorf("redis: %+v, want a service with a health check and no published port", r)
	}
}

// TestImage: the binary the Dockerfile builds (with scripts/build) is
// static, and runs as the image runs it: as the image's user, in a data
// directory that is the one place it may write, with the image's settings
// but for a loopback address. There it creates the SQLite database and the
// JWT secret, answers /healthz and /readyz and its own health check, and
// creates and verifies a key.
func TestImage(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "not root: cannot run apikeyd as the image's non-root user", "run the tests as root")
	}
	d := readDockerfile(t)
	uid, gid := imageUser(t, d.user)

	// A directory only root may write, holding the binary, and the data
	// directory, the image user's.
	root, err := os.MkdirTemp("", "apikeyd-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "apikeyd")
	build := exec.Command("sh", "-c", strings.Replace(d.build, "/out/apikeyd", "\"$0\"", 1), bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", d.build, err, out)
	}
	checkStatic(t, bin)
	data := filepath.Join(root, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}

	// The image's environment, its /data here, on loopback.
	env := []string{"PATH=/usr/bin:/bin", "ADDR=127.0.0.1:0"}
	for k, v := range d.env {
		if k != "ADDR" {
			env = append(env, k+"="+strings.Replace(v, d.volume, data, 1))
		}
	}
	asImageUser := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = data, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return cmd
	}
	p, err := launchCommand(t, asImageUser(append(d.entrypoint[1:], d.cmd...)...))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(p.URL, "http://")
	for _, path := range []string{"/healthz", "/readyz"} {
		res, err := http.Get(p.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
	}
	healthcheck := func() error {
		cmd := asImageUser(d.healthcmd[1:]...)
		cmd.Env = append(cmd.Env, "ADDR="+addr) // the image's ADDR names its port
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("%s: %v: %s", strings.Join(d.healthcmd, " "), err, out)
		}
		return err
	}
	if err := healthcheck(); err != nil {
		t.Error("the image's health check fails on a healthy server")
	}

	// The database and the secret, in the data directory, the user's.
	for name, mode := range map[string]os.FileMode{"apikeyd.db": 0, "apikeyd.jwt-secret": 0o600} {
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Errorf("no %s in the data directory: %v", name, err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || mode != 0 && fi.Mode().Perm() != mode {
			t.Errorf("%s: owner %d, mode %v; want %d and %v", name, st.Uid, fi.Mode().Perm(), uid, mode)
		}
	}

	// A login token signed with the generated secret, then a key.
	out, err := asImageUser("token", "--sub", "alice").Output()
	if err != nil {
		t.Fatalf("apikeyd token: %v", err)
	}
	tok := strings.TrimSpace(string(out))
	req, _ := http.NewRequest("POST", p.URL+"/auth/api-keys", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var key struct{ Key string }
	err = json.NewDecoder(res.Body).Decode(&key)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("create a key: %d %v", res.StatusCode, err)
	}
	req, _ = http.NewRequest("GET", p.URL+"/auth/verify", nil)
	req.Header.Set("X-Api-Key", key.Key)
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("verify the key: %d", res.StatusCode)
	}

	if err := p.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("the server's exit: %v", err)
	}
	if healthcheck() == nil {
		t.Error("the image's health check succeeds with the server stopped")
	}
	// The server wrote nowhere else it could: the binary's directory holds
	// the binary and the data directory only.
	if entries, err := os.ReadDir(root); err != nil || len(entries) != 2 {
		t.Errorf("the binary's directory holds %v (%v)", entries, err)
	}
}

// imageUser parses USER uid:gid.
func imageUser(t *testing.T, user string) (uid, gid int) {
	t.Helper()
	u, g, _ := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("Dockerfile: USER %q is not numeric uid:gid", user)
	}
	return uid, gid
}

// checkStatic fails the test unless bin is a static ELF executable without
// symbols or the paths of this machine (-trimpath), which runs on an image
// without a C library.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (%v)", bin, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v", bin, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: not built with -ldflags='-s -w'", bin)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(wd)) {
		t.Errorf("%s holds the path of its source, %s: not built with -trimpath", bin, wd)
	}
}
