package druglib

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

func versionPath(version string) string { return "/v1/library/" + url.PathEscape(version) }

// Client talks to a drug-library Server. Every bundle it returns has passed
// CheckHash: the library is valid and hashes to the served hash. Signature
// checks are the caller's (Bundle.Verify), since the posture decides whether
// unsigned bundles are acceptable.
type Client struct {
	// BaseURL is the server's base URL, e.g. http://127.0.0.1:41234.
	BaseURL string
	// HTTP is the HTTP client. Nil means http.DefaultClient.
	HTTP *http.Client
}

// APIError is an error answer of the server. It unwraps to the matching
// sentinel error (ErrNotFound, ErrState, ErrSelfApproval, ErrRollback, ...)
// when the server named one.
type APIError struct {
	StatusCode int
	Code       string // not_found, state, exists, self_approval, rollback, invalid, forbidden, no_user, bad_request
	Message    string
	Problems   []*FieldError // validation problems (code invalid)
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.StatusCode, e.Code, e.Message)
}

// Unwrap returns the sentinel error matching Code, if any.
func (e *APIError) Unwrap() error {
	for _, c := range apiCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	if e.StatusCode == http.StatusNotFound {
		return ErrNotFound
	}
	return nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a request and decodes a 2xx JSON answer into out.
func (c *Client) do(ctx context.Context, method, rawURL string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxLibraryBytes+1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{StatusCode: resp.StatusCode}
		var body apiError
		if json.Unmarshal(data, &body) == nil && body.Error != "" {
			ae.Code, ae.Message, ae.Problems = body.Code, body.Error, body.Problems
		} else {
			ae.Message = strings.TrimSpace(string(data))
		}
		return ae
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

func (c *Client) bundle(ctx context.Context, op, rawURL string) (*Bundle, error) {
	var b Bundle
	if err := c.do(ctx, http.MethodGet, rawURL, nil, &b); err != nil {
		return nil, fmt.Errorf("druglib: %s: %w", op, err)
	}
	if err := b.CheckHash(); err != nil {
		return nil, fmt.Errorf("druglib: %s: %w", op, err)
	}
	return &b, nil
}

func (c *Client) url(path string) string { return strings.TrimRight(c.BaseURL, "/") + path }

// Current returns the published bundle (an error wrapping ErrNotFound when
// nothing is published).
func (c *Client) Current(ctx context.Context) (*Bundle, error) {
	return c.bundle(ctx, "get current library", c.url("/v1/library/current"))
}

// Get returns the bundle of one version.
func (c *Client) Get(ctx context.Context, version string) (*Bundle, error) {
	return c.bundle(ctx, "get library "+version, c.url(versionPath(version)))
}

// Fetch returns the bundle at an absolute URL, such as the library_url of a
// pump-wire library command. BaseURL is not used.
func (c *Client) Fetch(ctx context.Context, rawURL string) (*Bundle, error) {
	return c.bundle(ctx, "fetch library", rawURL)
}

// Versions lists every version on the server, oldest first.
func (c *Client) Versions(ctx context.Context) ([]*VersionInfo, error) {
	var out []*VersionInfo
	if err := c.do(ctx, http.MethodGet, c.url("/v1/library/versions"), nil, &out); err != nil {
		return nil, fmt.Errorf("druglib: list versions: %w", err)
	}
	return out, nil
}

// Draft uploads lib as a draft (or an edit of a draft) by author.
func (c *Client) Draft(ctx context.Context, lib *Library, author string) (*VersionInfo, error) {
	var out VersionInfo
	raw, err := json.Marshal(lib)
	if err != nil {
		return nil, fmt.Errorf("druglib: draft: %w", err)
	}
	body := draftRequest{Author: author, Library: raw}
	if err := c.do(ctx, http.MethodPost, c.url("/v1/library/drafts"), body, &out); err != nil {
		return nil, fmt.Errorf("druglib: draft %s: %w", lib.Version, err)
	}
	return &out, nil
}

// Finalize freezes a draft.
func (c *Client) Finalize(ctx context.Context, version, by string) (*VersionInfo, error) {
	var out VersionInfo
	if err := c.do(ctx, http.MethodPost, c.url(versionPath(version)+"/finalize"), actionRequest{By: by}, &out); err != nil {
		return nil, fmt.Errorf("druglib: finalize %s: %w", version, err)
	}
	return &out, nil
}

// Approve approves a finalized version as a second pharmacist.
func (c *Client) Approve(ctx context.Context, version, by string) (*VersionInfo, error) {
	var out VersionInfo
	if err := c.do(ctx, http.MethodPost, c.url(versionPath(version)+"/approve"), actionRequest{By: by}, &out); err != nil {
		return nil, fmt.Errorf("druglib: approve %s: %w", version, err)
	}
	return &out, nil
}

// Publish publishes an approved version and returns its bundle.
func (c *Client) Publish(ctx context.Context, version, by string) (*Bundle, error) {
	return c.publish(ctx, version, actionRequest{By: by})
}

// ForcePublish publishes an approved version even if it is older than the
// current one (a rollback), recording reason.
func (c *Client) ForcePublish(ctx context.Context, version, by, reason string) (*Bundle, error) {
	return c.publish(ctx, version, actionRequest{By: by, Force: true, Reason: reason})
}

func (c *Client) publish(ctx context.Context, version string, req actionRequest) (*Bundle, error) {
	var b Bundle
	if err := c.do(ctx, http.MethodPost, c.url(versionPath(version)+"/publish"), req, &b); err != nil {
		return nil, fmt.Errorf("druglib: publish %s: %w", version, err)
	}
	if err := b.CheckHash(); err != nil {
		return nil, fmt.Errorf("druglib: publish %s: %w", version, err)
	}
	return &b, nil
}
