package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/oauth"

	"grpctest/go-common/tracing"
)

// dialOptions are the connection's credentials (TLS, a bearer token) and, with
// tracing on, the handler that puts a W3C trace context (traceparent) on every call.
func dialOptions() ([]grpc.DialOption, error) {
	creds, err := transportCredentials(useTLS || caFile != "" || cert != "", caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	options := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		options = append(options, grpc.WithPerRPCCredentials(oauth.TokenSource{
			TokenSource: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}),
		}))
	}
	if tracing.Enabled() {
		options = append(options, grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	}
	return options, nil
}

// transportCredentials is plaintext unless TLS is asked for (a CA or a client
// certificate implies it). With a CA (PEM) only that CA is trusted, otherwise the
// system's trust store; with a certificate and key the client presents them (mutual TLS).
func transportCredentials(useTLS bool, caPEM, certPEM, keyPEM []byte) (credentials.TransportCredentials, error) {
	if !useTLS {
		return insecure.NewCredentials(), nil
	}
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPEM != nil {
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("no certificate found in " + caFile)
		}
	}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(config), nil
}
