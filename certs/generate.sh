#!/bin/sh
# Creates the development credentials: a CA, certificates, and signed tokens.
#
#   certs/generate.sh [DIR]     (DIR defaults to this folder; `make certs` runs it)
#
#   ca.crt, ca.key            the development CA (trust it with --ca certs/ca.crt)
#   server.crt, server.key    Envoy's TLS listener: localhost, 127.0.0.1 and `envoy` (its
#                             compose service name)
#   replica.crt, replica.key  the replicas, when the hop from Envoy is TLS too: localhost,
#                             127.0.0.1 and `py-server`
#   client.crt, client.key    a client identity for mutual TLS that may call
#                             (spiffe://grpctest/client)
#   guest.crt, guest.key      one that may not (spiffe://grpctest/guest)
#   jwt.key, jwks.json        the token signing key and its public key set (for Envoy)
#   token.jwt                 a bearer token that may call (scope grpctest.call)
#   token-readonly.jwt        one that may not (scope grpctest.read)
#
# Every certificate and token lives 365 days (Mozilla's TLS guidelines allow no longer).
# Existing files are kept while they have more than 30 days left; delete DIR's files to
# start over. These are development keys: git-ignored and never baked into an image.
set -eu
dir=${1:-$(dirname "$0")}
here=$(cd "$(dirname "$0")" && pwd)
days=365
mkdir -p "$dir"
cd "$dir"

fresh() {  # a certificate that exists, lives at most $days days and has 30 left
  [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend $((30 * 86400)) >/dev/null \
    && ! openssl x509 -in "$1" -noout -checkend $(((days + 1) * 86400)) >/dev/null
}

all_fresh=yes
for crt in ca server replica client guest; do
  fresh $crt.crt && [ -s $crt.key ] || all_fresh=no
done
for f in jwt.key jwks.json token.jwt token-readonly.jwt; do
  [ -s $f ] || all_fresh=no
done
if [ $all_fresh = yes ]; then
  echo "certs: using existing credentials in $(pwd)"
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
server_usage="extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
client_usage="extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
sign server "/CN=localhost" "subjectAltName=DNS:localhost,DNS:envoy,IP:127.0.0.1
$server_usage"
sign replica "/CN=py-server" "subjectAltName=DNS:localhost,DNS:py-server,IP:127.0.0.1
$server_usage"
sign client "/CN=grpctest-client" "subjectAltName=URI:spiffe://grpctest/client
$client_usage"
sign guest "/CN=grpctest-guest" "subjectAltName=URI:spiffe://grpctest/guest
$client_usage"
rm -f ca.srl

openssl genrsa -out jwt.key 2048 2>/dev/null
python3 "$here/jwt.py" jwks jwt.key > jwks.json
python3 "$here/jwt.py" token jwt.key --scope grpctest.call --days $days > token.jwt
python3 "$here/jwt.py" token jwt.key --scope grpctest.read --days $days > token-readonly.jwt

# Envoy and the replicas run as unprivileged users (uid 101, 10001 in their images) and
# must read their keys; the clients', the signing key and the CA's stay private.
chmod 644 server.key replica.key
chmod 600 ca.key jwt.key client.key guest.key
echo "certs: created the CA, certificates (server, replica, client, guest) and tokens in $(pwd)"
