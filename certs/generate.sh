#!/bin/sh
# Creates a local development CA, Envoy's server certificate and a client certificate.
#
#   certs/generate.sh [DIR]     (DIR defaults to this folder; `make certs` runs it)
#
#   ca.crt, ca.key          the development CA (trust it with --ca certs/ca.crt)
#   server.crt, server.key  Envoy's TLS listener: localhost, 127.0.0.1 and `envoy` (its
#                           compose service name)
#   client.crt, client.key  a client identity for mutual TLS (CN grpctest-client)
#
# Every certificate lives 365 days (Mozilla's TLS guidelines allow no longer). Existing
# files are kept while they have more than 30 days left; delete DIR's *.crt/*.key to
# start over. These are development keys: git-ignored and never baked into an image.
set -eu
dir=${1:-$(dirname "$0")}
days=365
mkdir -p "$dir"
cd "$dir"

fresh() {  # a certificate that exists, lives at most $days days and has 30 left
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null \
    && ! openssl x509 -in "$1" -noout -checkend $(((days + 1) * 86400)) >/dev/null
}

if fresh ca.crt && fresh server.crt && fresh client.crt && [ -s server.key ] && [ -s client.key ]; then
  echo "certs: using existing $(pwd)/{ca,server,client}.crt"
  exit 0
fi

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign NAME SUBJECT EXTENSIONS: NAME.key and NAME.crt, signed by the CA.
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
    -out "$1.crt" -days $days -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

key ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days $days -subj "/CN=grpctest local CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null
sign server "/CN=localhost" "subjectAltName=DNS:localhost,DNS:envoy,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
sign client "/CN=grpctest-client" "subjectAltName=URI:spiffe://grpctest/client
extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
rm -f ca.srl
# Envoy runs as an unprivileged user (uid 101 in its image) and must read its key.
chmod 644 server.key
chmod 600 ca.key client.key
echo "certs: created $(pwd)/ca.crt, server.crt (localhost, 127.0.0.1, envoy), client.crt"
