#!/usr/bin/env bash
# Builds sluice's container image and tags it sluice:<version> (package.json) and
# sluice:<git short sha>, with whichever of docker, podman or buildah works here.
#
#   ./create_docker-image.sh                      build and tag
#   ./create_docker-image.sh --push REGISTRY      also tag REGISTRY/sluice:… and push both
#   ./create_docker-image.sh --kind [CLUSTER]     also load it into a kind cluster [kind]
#   ./create_docker-image.sh --minikube           also load it into minikube
#   ./create_docker-image.sh --base-image IMG     build on IMG instead of the Dockerfile's
#                                                 default (a slim Node.js LTS image)
# More:
#   --builder docker|podman|buildah   use this builder (default: the first that works;
#                                     also SLUICE_BUILDER)
#   --image-name NAME                 tag NAME:<version> and NAME:<sha> [sluice]
#
# buildah and podman build with --isolation chroot unless BUILDAH_ISOLATION says
# otherwise: it needs no nested container runtime, so it works inside CI containers.
set -euo pipefail

# Prints the comment block above.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { printf 'create_docker-image.sh: %s\n' "$1" >&2; exit "${2:-1}"; }

push_registry=''
kind_cluster=''
load_minikube=false
base_image=''
builder="${SLUICE_BUILDER:-}"
image_name='sluice'

while [ $# -gt 0 ]; do
  case "$1" in
    --push)
      [ $# -ge 2 ] && [ -n "$2" ] || die '--push needs a registry, e.g. --push ghcr.io/acme' 2
      push_registry="${2%/}"; shift 2 ;;
    --kind)
      # The cluster name is optional: take the next word unless it is another option.
      if [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#-}" = "$2" ]; then kind_cluster="$2"; shift 2
      else kind_cluster='kind'; shift; fi ;;
    --minikube) load_minikube=true; shift ;;
    --base-image)
      [ $# -ge 2 ] && [ -n "$2" ] || die '--base-image needs an image, e.g. --base-image node:24-bookworm-slim' 2
      base_image="$2"; shift 2 ;;
    --builder)
      [ $# -ge 2 ] && [ -n "$2" ] || die '--builder needs one of docker, podman, buildah' 2
      builder="$2"; shift 2 ;;
    --image-name)
      [ $# -ge 2 ] && [ -n "$2" ] || die '--image-name needs a name' 2
      image_name="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" 2 ;;
  esac
done

cd "$(dirname "$0")"

# --- which builder -----------------------------------------------------------------------
# A docker CLI without a running engine is common (CI images, remote contexts): ask the
# engine, not just the CLI.
builder_works() {
  case "$1" in
    docker) command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 ;;
    podman|buildah) command -v "$1" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

if [ -n "$builder" ]; then
  case "$builder" in docker|podman|buildah) ;; *) die "unknown builder '$builder' (docker, podman or buildah)" 2 ;; esac
  if ! builder_works "$builder"; then
    [ "$builder" = docker ] && die 'builder docker is not usable: `docker info` cannot reach a Docker engine'
    die "builder $builder is not installed"
  fi
else
  for candidate in docker podman buildah; do
    if builder_works "$candidate"; then builder="$candidate"; break; fi
  done
  if [ -z "$builder" ]; then
    hint=''
    command -v docker >/dev/null 2>&1 && hint=' (a docker CLI exists, but `docker info` cannot reach a Docker engine)'
    die "no container image builder found: install docker (with a running engine), podman or buildah${hint}.
On Debian/Ubuntu: sudo apt-get install -y buildah"
  fi
fi

# --- what to tag ---------------------------------------------------------------------------
version=$(sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' package.json | head -n 1)
[ -n "$version" ] || die 'cannot read "version" from package.json'

revision='unknown'
sha_tag=''
if git rev-parse --git-dir >/dev/null 2>&1; then
  revision=$(git rev-parse HEAD)
  sha_tag=$(git rev-parse --short HEAD)
  # An image built from uncommitted changes must not pass for the commit.
  if ! git diff --quiet HEAD -- 2>/dev/null; then
    revision="${revision}-dirty"
    sha_tag="${sha_tag}-dirty"
  fi
else
  printf 'create_docker-image.sh: not a git checkout, so no :<sha> tag\n' >&2
fi

tags=("${image_name}:${version}")
[ -n "$sha_tag" ] && tags+=("${image_name}:${sha_tag}")

build_args=(
  --build-arg "VERSION=${version}"
  --build-arg "REVISION=${revision}"
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
)
[ -n "$base_image" ] && build_args+=(--build-arg "BASE_IMAGE=${base_image}")
tag_args=()
for t in "${tags[@]}"; do tag_args+=(-t "$t"); done

# --- build -------------------------------------------------------------------------------
printf 'Building %s with %s\n' "${tags[*]}" "$builder" >&2
case "$builder" in
  # BuildKit for the Dockerfile's cache mounts (the default since Docker 23).
  docker) DOCKER_BUILDKIT=1 docker build "${build_args[@]}" "${tag_args[@]}" -f Dockerfile . ;;
  podman) podman build --isolation "${BUILDAH_ISOLATION:-chroot}" --layers "${build_args[@]}" "${tag_args[@]}" -f Dockerfile . ;;
  buildah) buildah build --isolation "${BUILDAH_ISOLATION:-chroot}" --layers "${build_args[@]}" "${tag_args[@]}" -f Dockerfile . ;;
esac

# --- push ----------------------------------------------------------------------------------
if [ -n "$push_registry" ]; then
  for t in "${tags[@]}"; do
    remote="${push_registry}/${t}"
    printf 'Pushing %s\n' "$remote" >&2
    case "$builder" in
      docker) docker tag "$t" "$remote" && docker push "$remote" ;;
      podman) podman tag "$t" "$remote" && podman push "$remote" ;;
      buildah) buildah tag "$t" "$remote" && buildah push "$remote" ;;
    esac
  done
  printf 'Point the manifests at it (in your overlay): kustomize edit set image sluice=%s/%s:%s\n' \
    "$push_registry" "$image_name" "$version" >&2
fi

# --- load into a local cluster -------------------------------------------------------------
# Through an image archive, which works for every builder (kind and minikube read the
# Docker engine's images only when that is where the image was built).
if [ -n "$kind_cluster" ] || [ "$load_minikube" = true ]; then
  archive_dir=$(mktemp -d)
  trap 'rm -rf "$archive_dir"' EXIT
  archive="${archive_dir}/sluice.tar"
  case "$builder" in
    docker) docker save -o "$archive" "${tags[@]}" ;;
    podman) podman save --format docker-archive -o "$archive" "${tags[0]}" ;;
    buildah) buildah push "${tags[0]}" "docker-archive:${archive}:${tags[0]}" ;;
  esac
  if [ -n "$kind_cluster" ]; then
    command -v kind >/dev/null 2>&1 || die 'kind is not installed (https://kind.sigs.k8s.io)'
    printf 'Loading %s into kind cluster %s\n' "${tags[0]}" "$kind_cluster" >&2
    kind load image-archive "$archive" --name "$kind_cluster"
  fi
  if [ "$load_minikube" = true ]; then
    command -v minikube >/dev/null 2>&1 || die 'minikube is not installed (https://minikube.sigs.k8s.io)'
    printf 'Loading %s into minikube\n' "${tags[0]}" >&2
    minikube image load "$archive"
  fi
fi

printf 'Built %s\n' "${tags[*]}"
