// System OpenSSL 3 (pkg-config openssl). Static-inline shims turn macros into functions that
// Swift can call; each says why it exists.
#ifndef M2M_COPENSSL_SHIM_H
#define M2M_COPENSSL_SHIM_H
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/ssl.h>

/// OPENSSL_VERSION_NUMBER is a macro; Swift cannot see its value.
static inline unsigned long m2m_openssl_version_number(void) { return OPENSSL_VERSION_NUMBER; }

/// OPENSSL_cleanse through a non-macro entry point (zeroes key material so the compiler keeps it).
static inline void m2m_openssl_cleanse(void *ptr, size_t len) { OPENSSL_cleanse(ptr, len); }

#endif
