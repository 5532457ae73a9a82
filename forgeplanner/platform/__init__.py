"""K3s platform outputs rendered from a `PlatformLayout`: Kubernetes manifests (as dicts and
YAML) and the K3s install commands. Rendering is pure; the CLI writes the files."""
