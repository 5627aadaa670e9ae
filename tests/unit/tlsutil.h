/* Makes a self-signed certificate at test time (EC P-256, CN and SAN = the given host). */
#ifndef RS_TLSUTIL_H
#define RS_TLSUTIL_H

/* Fills *cert_pem and *key_pem with malloc'd NUL-terminated PEM text. Returns 0 on success. */
int tu_make_cert(const char *host, char **cert_pem, char **key_pem);

#endif
