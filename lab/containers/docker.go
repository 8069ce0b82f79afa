package containers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
)

// Labels every object of the lab carries.
const (
	// LabelLab marks every container, network and image of the lab; its
	// value is the lab's run id ("image" for the image).
	LabelLab = "org.pumplab.lab"
	// LabelPID is the process id that owns the object; a sweep removes the
	// objects whose owner is gone.
	LabelPID = "org.pumplab.pid"
	// LabelHost is the owner's host name.
	LabelHost = "org.pumplab.host"
)

// ImageRepo is the repository of the lab's image; the tag is a hash of the
// binary.
const ImageRepo = "pumplab-lab"

func init() {
	// No reaper container: nothing can be pulled here, and the lab cleans
	// up after itself by label (Sweep). Set before any testcontainers call.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	tclog.SetDefault(tclog.NewNoopLogger())
}

// ErrNoDocker wraps every reason the Docker engine cannot be used.
var ErrNoDocker = errors.New("containers: Docker engine not usable")

var (
	cliMu sync.Mutex
	cli   *testcontainers.DockerClient
)

// dockerClient returns the shared engine client.
func dockerClient(ctx context.Context) (*testcontainers.DockerClient, error) {
	cliMu.Lock()
	defer cliMu.Unlock()
	if cli != nil {
		return cli, nil
	}
	c, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	cli = c
	return c, nil
}

// Available reports whether a Docker engine answers; the error says why not.
func Available(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%w: ping: %v", ErrNoDocker, err)
	}
	return nil
}

func ownerLabels(run string) map[string]string {
	host, _ := os.Hostname()
	return map[string]string{LabelLab: run, LabelPID: strconv.Itoa(os.Getpid()), LabelHost: host}
}

// Swept counts what a sweep removed.
type Swept struct {
	Containers, Networks, Images int
}

// Sweep removes the lab's leftovers: every container and network labelled
// LabelLab whose owning process (LabelPID on this host) is gone, and, with
// all, every one regardless of owner. Images are removed with all only
// (they are shared by the labs of one machine).
func Sweep(ctx context.Context, all bool) (Swept, error) {
	return sweep(ctx, func(labels map[string]string) bool {
		return all || !ownerAlive(labels)
	}, all)
}

// sweepRun removes every container and network of one lab run.
func sweepRun(ctx context.Context, run string) (Swept, error) {
	return sweep(ctx, func(labels map[string]string) bool { return labels[LabelLab] == run }, false)
}

func ownerAlive(labels map[string]string) bool {
	host, _ := os.Hostname()
	if labels[LabelHost] != host || labels[LabelPID] == "" {
		return true // not ours to judge (another host, or a compose project)
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == os.Getpid() {
		return true
	}
	return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
}

func sweep(ctx context.Context, match func(map[string]string) bool, images bool) (Swept, error) {
	var s Swept
	c, err := dockerClient(ctx)
	if err != nil {
		return s, err
	}
	f := client.Filters{}.Add("label", LabelLab)
	var errs []error
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return s, fmt.Errorf("containers: sweep: list containers: %w", err)
	}
	for _, ct := range cs.Items {
		if !match(ct.Labels) {
			continue
		}
		if _, err := c.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", ct.ID[:12], err))
			continue
		}
		s.Containers++
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return s, fmt.Errorf("containers: sweep: list networks: %w", err)
	}
	for _, n := range ns.Items {
		if !match(n.Labels) {
			continue
		}
		if _, err := c.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		s.Networks++
	}
	if images {
		is, err := c.ImageList(ctx, client.ImageListOptions{Filters: f})
		if err != nil {
			return s, fmt.Errorf("containers: sweep: list images: %w", err)
		}
		for _, im := range is.Items {
			if _, err := c.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("remove image %s: %w", im.ID, err))
				continue
			}
			s.Images++
		}
	}
	if err := errors.Join(errs...); err != nil {
		return s, fmt.Errorf("containers: sweep: %w", err)
	}
	return s, nil
}

func isNotFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "No such") || strings.Contains(err.Error(), "not found"))
}

// Leftovers lists the containers and networks labelled LabelLab that this
// process or a process that is gone left behind (the suite's end-of-run
// check); the labs of other running processes are not listed.
func Leftovers(ctx context.Context) ([]string, error) {
	c, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	f := client.Filters{}.Add("label", LabelLab)
	var out []string
	cs, err := c.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("containers: list containers: %w", err)
	}
	mine := func(l map[string]string) bool { return l[LabelPID] == strconv.Itoa(os.Getpid()) || !ownerAlive(l) }
	for _, ct := range cs.Items {
		if !mine(ct.Labels) {
			continue
		}
		out = append(out, "container "+strings.Join(ct.Names, ",")+" ("+ct.Labels[LabelLab]+")")
	}
	ns, err := c.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("containers: list networks: %w", err)
	}
	for _, n := range ns.Items {
		if !mine(n.Labels) {
			continue
		}
		out = append(out, "network "+n.Name+" ("+n.Labels[LabelLab]+")")
	}
	return out, nil
}

// --- the image ---

// Image is the lab's image: one static pumplab binary FROM scratch.
type Image struct {
	Tag   string // pumplab-lab:<hash>
	Size  int64  // bytes
	Built bool   // false when an image of the same binary existed
	Took  time.Duration
}

var (
	binMu   sync.Mutex
	binPath string
)

// binary returns a static pumplab binary: explicit, PUMPLAB_BINARY, the
// running executable when it is a static pumplab, or one built with the Go
// toolchain (CGO_ENABLED=0) from the module the working directory is in.
func binary(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		return explicit, checkStatic(explicit)
	}
	if p := os.Getenv("PUMPLAB_BINARY"); p != "" {
		return p, checkStatic(p)
	}
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		return binPath, nil
	}
	if exe, err := os.Executable(); err == nil && strings.HasPrefix(filepath.Base(exe), "pumplab") && !strings.HasSuffix(exe, ".test") && checkStatic(exe) == nil {
		binPath = exe
		return exe, nil
	}
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(gomod)) == "" || strings.TrimSpace(string(gomod)) == os.DevNull {
		return "", fmt.Errorf("containers: no static pumplab binary: set PUMPLAB_BINARY to one built with CGO_ENABLED=0, or run inside the module (go env GOMOD: %v)", err)
	}
	dir, err := os.MkdirTemp("", "pumplab-bin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pumplab")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/pumplab")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("containers: build the static pumplab binary: %v\n%s", err, b)
	}
	binPath = out
	return out, nil
}

// checkStatic refuses a dynamically linked binary: the image has no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("containers: binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("containers: binary %s is dynamically linked; build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// Dockerfile is the image's recipe: no base image, no multi-stage build.
const Dockerfile = "FROM scratch\nCOPY pumplab /pumplab\nENTRYPOINT [\"/pumplab\"]\n"

var (
	imgMu sync.Mutex
	built []string // images this process built
)

// Cleanup removes what this process (and any owner that is gone) left: the
// containers and networks with the lab's label, and the images this process
// built. Entry points that keep the image across labs (KeepImage) call it
// at the end, also after a failure or an interrupt.
func Cleanup(ctx context.Context) error {
	_, err := sweep(ctx, func(l map[string]string) bool {
		return l[LabelPID] == strconv.Itoa(os.Getpid()) || !ownerAlive(l)
	}, false)
	imgMu.Lock()
	refs := built
	built = nil
	imgMu.Unlock()
	for _, ref := range refs {
		if rerr := RemoveImage(ctx, ref); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// BuildImage builds (or finds) the image of a static pumplab binary with
// testcontainers, from a temporary build context holding the binary and
// Dockerfile. Nothing is pulled.
func BuildImage(ctx context.Context, bin string) (Image, error) {
	imgMu.Lock()
	defer imgMu.Unlock()
	start := time.Now()
	bin, err := binary(ctx, bin)
	if err != nil {
		return Image{}, err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return Image{}, fmt.Errorf("containers: read binary: %w", err)
	}
	sum := sha256.Sum256(data)
	tag := hex.EncodeToString(sum[:6])
	ref := ImageRepo + ":" + tag
	c, err := dockerClient(ctx)
	if err != nil {
		return Image{}, err
	}
	if in, err := c.ImageInspect(ctx, ref); err == nil {
		return Image{Tag: ref, Size: in.Size, Took: time.Since(start)}, nil
	}
	dir, err := os.MkdirTemp("", "pumplab-image-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "pumplab"), data, 0o755); err != nil {
		return Image{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(Dockerfile), 0o644); err != nil {
		return Image{}, err
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		return Image{}, fmt.Errorf("%w: %v", ErrNoDocker, err)
	}
	defer p.Close()
	var logb bytes.Buffer
	req := &testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: ImageRepo, Tag: tag, KeepImage: true,
		BuildLogWriter: &logb,
		BuildOptionsModifier: func(o *client.ImageBuildOptions) {
			if o.Labels == nil {
				o.Labels = map[string]string{}
			}
			o.Labels[LabelLab] = "image"
			o.PullParent = false
			o.Remove = true
			o.ForceRemove = true
		},
	}}
	if _, err := p.BuildImage(ctx, req); err != nil {
		// An interrupted build leaves an untagged image with the label.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if perr := pruneDangling(pctx); perr != nil {
			err = errors.Join(err, perr)
		}
		return Image{}, fmt.Errorf("containers: build image %s: %w\n%s", ref, err, tail(logb.String()))
	}
	built = append(built, ref)
	in, err := c.ImageInspect(ctx, ref)
	if err != nil {
		return Image{}, fmt.Errorf("containers: image %s after build: %w", ref, err)
	}
	return Image{Tag: ref, Size: in.Size, Built: true, Took: time.Since(start)}, nil
}

// pruneDangling removes the untagged images with the lab's label.
func pruneDangling(ctx context.Context) error {
	c, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	is, err := c.ImageList(ctx, client.ImageListOptions{Filters: client.Filters{}.Add("label", LabelLab).Add("dangling", "true")})
	if err != nil {
		return fmt.Errorf("containers: list untagged images: %w", err)
	}
	var errs []error
	for _, im := range is.Items {
		if _, err := c.ImageRemove(ctx, im.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// RemoveImage removes the lab's image.
func RemoveImage(ctx context.Context, ref string) error {
	c, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	if _, err := c.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil && !isNotFound(err) {
		return fmt.Errorf("containers: remove image %s: %w", ref, err)
	}
	return nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
