package packagetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// obj is one Kubernetes object, as decoded YAML.
type obj = map[string]any

// get walks m along keys (map keys, or list indexes as ints).
func get(m any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			mm, ok := m.(map[string]any)
			if !ok {
				return nil
			}
			m = mm[k]
		case int:
			l, ok := m.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			m = l[k]
		}
	}
	return m
}

func str(m any, keys ...any) string { s, _ := get(m, keys...).(string); return s }
func list(m any, keys ...any) []any { l, _ := get(m, keys...).([]any); return l }

// num returns an integer field (YAML ints decode as int).
func num(m any, keys ...any) int {
	switch v := get(m, keys...).(type) {
	case int:
		return v
	case float64:
		return int(v)
	}
	return -1
}

// decodeManifests decodes a multi-document YAML stream.
func decodeManifests(t *testing.T, b []byte) []obj {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []obj
	for {
		var o obj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("manifests are not YAML: %v", err)
		}
		if o != nil {
			if str(o, "apiVersion") == "" || str(o, "kind") == "" || str(o, "metadata", "name") == "" {
				t.Fatalf("object without apiVersion, kind or name: %v", o)
			}
			out = append(out, o)
		}
	}
}

// manifests is a decoded set of objects by kind.
type manifests struct {
	byKind map[string][]obj
}

func index(objs []obj) manifests {
	m := manifests{byKind: map[string][]obj{}}
	for _, o := range objs {
		m.byKind[str(o, "kind")] = append(m.byKind[str(o, "kind")], o)
	}
	return m
}

func (m manifests) one(t *testing.T, kind string) obj {
	t.Helper()
	if n := len(m.byKind[kind]); n != 1 {
		t.Fatalf("%d objects of kind %s, want 1", n, kind)
	}
	return m.byKind[kind][0]
}

func (m manifests) named(kind, name string) obj {
	for _, o := range m.byKind[kind] {
		if str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

// want describes what a rendering must hold.
type want struct {
	dev         bool
	serviceType string // of the port pool's Service; "" with hostNetwork
	nodePorts   bool
	udp         bool
	secret      bool   // the TLS Secret is rendered (not an existing one)
	tokenSecret string // name of the API token Secret, if any
	noMetrics   bool   // metrics.enabled=false: no metrics listener
}

// matchLabels reports whether labels hold every selector pair.
func matchLabels(selector, labels any) bool {
	sm, _ := selector.(map[string]any)
	lm, _ := labels.(map[string]any)
	if len(sm) == 0 {
		return false
	}
	for k, v := range sm {
		if lm[k] != v {
			return false
		}
	}
	return true
}

// checkManifests checks a rendering against w and against the settings
// file it carries: kinds, probes, ports, volumes and security context.
func checkManifests(t *testing.T, objs []obj, w want) {
	t.Helper()
	m := index(objs)
	cm := m.one(t, "ConfigMap")
	var conf map[string]any
	if err := json.Unmarshal([]byte(str(cm, "data", "iofog-connector.conf")), &conf); err != nil {
		t.Fatalf("ConfigMap iofog-connector.conf is not JSON: %v", err)
	}
	if conf["dev"] != w.dev || conf["broker"] == nil || conf["address"] == nil {
		t.Errorf("settings %v: dev/broker/address", conf)
	}
	pool := conf["ports"].([]any)
	if len(pool) != 1 {
		t.Fatalf("settings ports %v: want one range", pool)
	}
	lohi := strings.Split(pool[0].(string), "-")
	lo, _ := strconv.Atoi(lohi[0])
	hi, _ := strconv.Atoi(lohi[len(lohi)-1])
	_, apiPortS, _ := strings.Cut(conf["api-address"].(string), ":")
	apiPort, _ := strconv.Atoi(apiPortS)

	ss := m.one(t, "StatefulSet")
	if num(ss, "spec", "replicas") != 1 {
		t.Errorf("StatefulSet replicas %v, want 1 (mappings live in one pod)", get(ss, "spec", "replicas"))
	}
	pod := get(ss, "spec", "template")
	if !matchLabels(get(ss, "spec", "selector", "matchLabels"), get(pod, "metadata", "labels")) {
		t.Errorf("StatefulSet selector does not match its pod labels")
	}
	headless := m.named("Service", str(ss, "spec", "serviceName"))
	if headless == nil || str(headless, "spec", "clusterIP") != "None" {
		t.Errorf("StatefulSet serviceName %q is not a headless Service", str(ss, "spec", "serviceName"))
	}
	psc := get(pod, "spec", "securityContext")
	if get(psc, "runAsNonRoot") != true || num(psc, "runAsUser") != 65532 {
		t.Errorf("pod securityContext %v: want runAsNonRoot and uid 65532", psc)
	}
	if (get(pod, "spec", "hostNetwork") == true) != (w.serviceType == "") {
		t.Errorf("hostNetwork %v with service type %q", get(pod, "spec", "hostNetwork"), w.serviceType)
	}
	ctrs := list(pod, "spec", "containers")
	if len(ctrs) != 1 {
		t.Fatalf("%d containers, want 1", len(ctrs))
	}
	c := ctrs[0]
	if img := str(c, "image"); !strings.Contains(img, "iofog-connector:") || strings.HasSuffix(img, ":") {
		t.Errorf("image %q has no tag", img)
	}
	csc := get(c, "securityContext")
	if get(csc, "allowPrivilegeEscalation") != false || get(csc, "readOnlyRootFilesystem") != true ||
		fmt.Sprint(get(csc, "capabilities", "drop")) != "[ALL]" {
		t.Errorf("container securityContext %v", csc)
	}
	named := map[string]int{}
	for _, p := range list(c, "ports") {
		named[str(p, "name")] = num(p, "containerPort")
	}
	if named["api"] != apiPort {
		t.Errorf("container port api %d, settings api-address port %d", named["api"], apiPort)
	}
	checkMetrics(t, conf, named, get(pod, "metadata", "annotations"), lo, hi, apiPort, w)
	scheme := "HTTPS"
	if w.dev {
		scheme = "HTTP"
	}
	for probe, path := range map[string]string{"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		hg := get(c, probe, "httpGet")
		if str(hg, "path") != path || get(hg, "port") != "api" || str(hg, "scheme") != scheme {
			t.Errorf("%s %v: want GET %s on port api over %s", probe, hg, path, scheme)
		}
	}

	// Volumes: the data dir on the claim, the settings from the ConfigMap,
	// the identity from the TLS Secret.
	mounts := map[string]string{}
	for _, vm := range list(c, "volumeMounts") {
		mounts[str(vm, "name")] = str(vm, "mountPath")
	}
	volumes := map[string]any{}
	for _, v := range list(pod, "spec", "volumes") {
		volumes[str(v, "name")] = v
	}
	claim := false
	for _, vct := range list(ss, "spec", "volumeClaimTemplates") {
		if str(vct, "metadata", "name") == "data" && str(vct, "spec", "resources", "requests", "storage") != "" {
			claim = true
		}
	}
	if !claim || mounts["data"] != conf["data-dir"] || mounts["data"] != "/var/lib/iofog-connector" {
		t.Errorf("data dir %v: mount %q, claim %v", conf["data-dir"], mounts["data"], claim)
	}
	if mounts["config"] != "/etc/iofog-connector" || str(volumes["config"], "configMap", "name") != str(cm, "metadata", "name") {
		t.Errorf("settings mount %q from %v, want /etc/iofog-connector from ConfigMap %s", mounts["config"], volumes["config"], str(cm, "metadata", "name"))
	}
	if !w.dev {
		cert, _ := conf["tls-cert"].(string)
		key, _ := conf["tls-key"].(string)
		if path.Dir(cert) != mounts["tls"] || path.Dir(key) != mounts["tls"] || mounts["tls"] == "" {
			t.Errorf("tls-cert %q and tls-key %q are not in the TLS mount %q", cert, key, mounts["tls"])
		}
		name := str(volumes["tls"], "secret", "secretName")
		sec := m.named("Secret", name)
		switch {
		case w.secret && sec == nil:
			t.Errorf("TLS Secret %q is not rendered", name)
		case w.secret:
			checkTLSSecret(t, sec)
		case !w.secret && (sec != nil || name != "iofog-connector-tls"):
			t.Errorf("TLS Secret %q (rendered %v), want the existing iofog-connector-tls", name, sec != nil)
		}
	} else if _, ok := mounts["tls"]; ok {
		t.Errorf("dev mode mounts a TLS identity")
	}
	if w.tokenSecret != "" {
		if str(volumes["api-token"], "secret", "secretName") != w.tokenSecret ||
			path.Dir(fmt.Sprint(conf["api-token-file"])) != mounts["api-token"] {
			t.Errorf("API token: file %v, mount %q, volume %v", conf["api-token-file"], mounts["api-token"], volumes["api-token"])
		}
	} else if conf["api-token-file"] != nil {
		t.Errorf("API token set without a Secret: %v", conf["api-token-file"])
	}

	// Services: the API one targets the api port; the pool's lists every
	// port of the settings' range under its own number.
	var api, pub obj
	for _, s := range m.byKind["Service"] {
		if !matchLabels(get(s, "spec", "selector"), get(pod, "metadata", "labels")) {
			t.Errorf("Service %s does not select the pod", str(s, "metadata", "name"))
		}
		switch {
		case str(s, "spec", "clusterIP") == "None":
		case len(list(s, "spec", "ports")) == 1 && get(s, "spec", "ports", 0, "targetPort") == "api":
			api = s
		default:
			pub = s
		}
	}
	if api == nil {
		t.Errorf("no API Service")
	}
	if w.serviceType == "" {
		if pub != nil {
			t.Errorf("hostNetwork and a pool Service")
		}
		return
	}
	if pub == nil {
		t.Fatalf("no Service for the port pool")
	}
	if str(pub, "spec", "type") != w.serviceType {
		t.Errorf("pool Service type %q, want %q", str(pub, "spec", "type"), w.serviceType)
	}
	protos := []string{"TCP"}
	if w.udp {
		protos = append(protos, "UDP")
	}
	got := map[string]bool{}
	for _, p := range list(pub, "spec", "ports") {
		port := num(p, "port")
		if num(p, "targetPort") != port || port < lo || port > hi {
			t.Errorf("pool Service port %v: want port == targetPort within %d-%d", p, lo, hi)
		}
		if w.nodePorts != (num(p, "nodePort") == port) {
			t.Errorf("pool Service port %v: nodePort", p)
		}
		got[fmt.Sprintf("%d/%s", port, str(p, "protocol"))] = true
	}
	for p := lo; p <= hi; p++ {
		for _, proto := range protos {
			if !got[fmt.Sprintf("%d/%s", p, proto)] {
				t.Errorf("pool Service lacks %d/%s", p, proto)
			}
		}
	}
	if len(got) != (hi-lo+1)*len(protos) {
		t.Errorf("pool Service has %d ports, want %d", len(got), (hi-lo+1)*len(protos))
	}
}

// checkMetrics: with metrics on, the settings' metrics-address port is
// the container port "metrics", outside the pool and not the API's, and
// the pod's prometheus.io annotations point at it; with metrics off there
// is none of these.
func checkMetrics(t *testing.T, conf map[string]any, ports map[string]int, annotations any, lo, hi, apiPort int, w want) {
	t.Helper()
	addr, on := conf["metrics-address"].(string)
	if w.noMetrics {
		if on || ports["metrics"] != 0 || str(annotations, "prometheus.io/scrape") != "" {
			t.Errorf("metrics off, yet metrics-address %q, port %d, annotations %v", addr, ports["metrics"], annotations)
		}
		return
	}
	_, ps, _ := strings.Cut(addr, ":")
	port, _ := strconv.Atoi(ps)
	if !on || port == 0 || ports["metrics"] != port {
		t.Fatalf("metrics-address %q, container port metrics %d: want the same port", addr, ports["metrics"])
	}
	if (port >= lo && port <= hi) || port == apiPort {
		t.Errorf("metrics port %d is in the pool %d-%d or the API's %d", port, lo, hi, apiPort)
	}
	if str(annotations, "prometheus.io/scrape") != "true" || str(annotations, "prometheus.io/port") != ps ||
		str(annotations, "prometheus.io/path") != "/metrics" {
		t.Errorf("pod annotations %v: want prometheus.io scrape, port %s and path /metrics", annotations, ps)
	}
}

// checkTLSSecret requires a kubernetes.io/tls Secret whose certificate
// parses and which helm keeps on uninstall.
func checkTLSSecret(t *testing.T, sec obj) {
	t.Helper()
	if str(sec, "type") != "kubernetes.io/tls" || str(sec, "metadata", "annotations", "helm.sh/resource-policy") != "keep" {
		t.Errorf("TLS Secret type %q, annotations %v", str(sec, "type"), get(sec, "metadata", "annotations"))
	}
	der, err := base64.StdEncoding.DecodeString(str(sec, "data", "tls.crt"))
	if err != nil {
		t.Fatalf("tls.crt: %v", err)
	}
	blk, _ := pem.Decode(der)
	if blk == nil {
		t.Fatalf("tls.crt holds no PEM block")
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatalf("tls.crt: %v", err)
	}
	if k, err := base64.StdEncoding.DecodeString(str(sec, "data", "tls.key")); err != nil || !bytes.Contains(k, []byte("PRIVATE KEY")) {
		t.Fatalf("tls.key: %v", err)
	}
}

// TestKubernetesManifests checks the plain manifests in deploy/kubernetes
// and the example Secrets they use.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "deploy", "kubernetes")
	b, err := os.ReadFile(filepath.Join(dir, "iofog-connector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checkManifests(t, decodeManifests(t, b), want{serviceType: "LoadBalancer"})

	b, err = os.ReadFile(filepath.Join(dir, "secret.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ex := index(decodeManifests(t, b))
	tlsSec := ex.named("Secret", "iofog-connector-tls")
	if str(tlsSec, "type") != "kubernetes.io/tls" || str(tlsSec, "stringData", "tls.crt") == "" || str(tlsSec, "stringData", "tls.key") == "" {
		t.Errorf("secret.example.yaml: TLS Secret %v", tlsSec)
	}
	if tok := ex.named("Secret", "iofog-connector-api-token"); str(tok, "stringData", "token") == "" {
		t.Errorf("secret.example.yaml: API token Secret %v", tok)
	}
}

// makeHelm runs `make target` in the repository (helm is installed from
// the module proxy by make if `make test` did not already).
func makeHelm(t *testing.T, target string, vars ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-s", "-C", repoRoot(t), target}, vars...)...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestHelmChart runs helm lint and helm template through make (the latter
// also requires deploy/kubernetes to be the chart's rendering) and checks
// the renderings of the default values and of each option.
func TestHelmChart(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	timer := time.AfterFunc(9*time.Minute, func() { panic("TestHelmChart: watchdog: ran over 9m") })
	defer timer.Stop()
	if out, err := makeHelm(t, "helm-lint"); err != nil {
		t.Fatalf("make helm-lint: %v\n%s", err, out)
	}
	dir := t.TempDir()
	if out, err := makeHelm(t, "helm-template", "PKG_DIR="+dir); err != nil {
		t.Fatalf("make helm-template: %v\n%s", err, out)
	}
	render := func(args string) ([]obj, string, error) {
		out, err := makeHelm(t, "helm-render", "PKG_DIR="+dir, "HELM_ARGS="+args)
		if err != nil {
			return nil, out, err
		}
		b, rerr := os.ReadFile(filepath.Join(dir, "iofog-connector.render.yaml"))
		if rerr != nil {
			t.Fatal(rerr)
		}
		return decodeManifests(t, b), out, nil
	}
	certFile, keyFile := writeCert(t, dir)
	tests := []struct {
		name string
		args string
		want want
	}{
		{"defaults generate the TLS identity", "", want{serviceType: "LoadBalancer", secret: true}},
		{"given certificate", "--set-file tls.cert=" + certFile + " --set-file tls.key=" + keyFile, want{serviceType: "LoadBalancer", secret: true}},
		{"NodePort", "--set service.type=NodePort --set ports.first=30000 --set ports.last=30019", want{serviceType: "NodePort", nodePorts: true, secret: true}},
		{"UDP for quic", "--set service.udp=true --set ports.first=7000 --set ports.last=7003", want{serviceType: "LoadBalancer", udp: true, secret: true}},
		{"dev", "--set dev=true", want{dev: true, serviceType: "LoadBalancer"}},
		{"API token", "--set apiToken.existingSecret=tok --set tls.existingSecret=iofog-connector-tls", want{serviceType: "LoadBalancer", tokenSecret: "tok"}},
		{"host network", "--set hostNetwork=true --set tls.existingSecret=iofog-connector-tls", want{}},
		{"metrics off", "--set metrics.enabled=false --set tls.existingSecret=iofog-connector-tls", want{serviceType: "LoadBalancer", noMetrics: true}},
		{"metrics port", "--set metrics.port=9100 --set tls.existingSecret=iofog-connector-tls", want{serviceType: "LoadBalancer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			objs, out, err := render(args)
			if err != nil {
				t.Fatalf("helm template %s: %v\n%s", args, err, out)
			}
			checkManifests(t, objs, tt.want)
		})
	}
	for args, msg := range map[string]string{
		"--set service.type=NodePort":                  "NodePort range 30000-32767",
		"--set ports.first=7000 --set ports.last=7000": "needs two ports",
		"--set ports.first=7000 --set ports.last=9000": "more than 1000 ports",
		"--set service.type=ClusterIP":                 "is not LoadBalancer or NodePort",
		"--set api.port=7010":                          "lies in the port pool",
		"--set-string tls.cert=x":                      "tls.key is required",
		"--set metrics.port=7010":                      "metrics.port 7010 lies in the port pool",
		"--set metrics.port=8443":                      "metrics.port 8443 is the API's port",
	} {
		if _, out, err := render(args); err == nil || !strings.Contains(out, msg) {
			t.Errorf("helm template %s: %v, want a refusal saying %q\n%s", args, err, msg, out)
		}
	}
}

// writeCert writes a self-signed certificate and its key into dir.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "connector.example.com"},
		DNSNames:  []string{"connector.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
