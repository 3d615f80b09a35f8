#!/bin/sh
# Creates a local development CA and a server certificate for Envoy's TLS listener.
#
#   certs/generate.sh [DIR]     (DIR defaults to this folder; `make certs` runs it)
#
# The server certificate is valid for localhost, 127.0.0.1 and `envoy` (its compose
# service name). Nothing is overwritten: delete DIR's *.crt/*.key to start over.
# These are development keys: they are git-ignored and never baked into an image.
set -eu
dir=${1:-$(dirname "$0")}
mkdir -p "$dir"
cd "$dir"

if [ -s server.crt ] && [ -s server.key ] && [ -s ca.crt ]; then
  echo "certs: using existing $(pwd)/server.crt"
  exit 0
fi

openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout ca.key -out ca.crt -days 825 -subj "/CN=grpctest local CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:localhost,DNS:envoy,IP:127.0.0.1" \
  "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
  -out server.crt -days 825 -extfile server.ext 2>/dev/null
rm -f server.csr server.ext ca.srl
# Envoy runs as an unprivileged user (uid 101 in its image) and must read the key.
chmod 644 server.key
chmod 600 ca.key
echo "certs: created $(pwd)/ca.crt and server.crt (localhost, 127.0.0.1, envoy)"
