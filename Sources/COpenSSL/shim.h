// System OpenSSL 3 (pkg-config openssl). Static-inline shims for what Swift cannot do directly or
// safely: macros, OSSL_PARAM arrays (which keep raw pointers: built and consumed here, in one C
// frame, so their storage is stable), and BIGNUM/ECDSA_SIG plumbing. Each says why it exists.
// Every function returns NULL / 0 on failure and leaves the reason on OpenSSL's error queue,
// which M2MCrypto drains into a typed error.
#ifndef M2M_COPENSSL_SHIM_H
#define M2M_COPENSSL_SHIM_H
#include <string.h>
#include <time.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>

/// OPENSSL_VERSION_NUMBER is a macro; Swift cannot see its value.
static inline unsigned long m2m_openssl_version_number(void) { return OPENSSL_VERSION_NUMBER; }

/// OPENSSL_cleanse through a non-macro entry point (zeroes key material so the compiler keeps it).
static inline void m2m_openssl_cleanse(void *ptr, size_t len) { OPENSSL_cleanse(ptr, len); }

/// Generates an EC key pair on the named group ("P-256", "brainpoolP256r1").
/// Why: EVP_PKEY_Q_keygen is variadic (not callable from Swift).
static inline EVP_PKEY *m2m_ec_generate(const char *group) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_CTX_set_params(ctx, params) != 1 || EVP_PKEY_generate(ctx, &pkey) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/// A copy of `tmpl` (a public-only EC key of the wanted group) holding `point` instead. The group
/// comes with the copy: building it by name (EVP_PKEY_fromdata with a group name, below) made the
/// whole import, check included, ~3.6x slower on P-256 (34 us against 9.5 us, C loop on this machine).
/// The point is decoded and checked on the curve by OpenSSL's point decoding.
static inline EVP_PKEY *m2m_ec_public_from_template(EVP_PKEY *tmpl, const unsigned char *point, size_t length) {
    EVP_PKEY *pkey = EVP_PKEY_dup(tmpl);
    if (pkey == NULL) return NULL;
    if (EVP_PKEY_set1_encoded_public_key(pkey, point, length) != 1) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    return pkey;
}

/// A fresh key pair on the group of `tmpl` (25 us by group name, 15 us from a template on P-256).
static inline EVP_PKEY *m2m_ec_generate_from_template(EVP_PKEY *tmpl) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, tmpl, NULL);
    if (ctx == NULL) return NULL;
    if (EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_generate(ctx, &pkey) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/// An EC public key from an uncompressed (or compressed) point. OpenSSL's point decoding rejects
/// points that are not on the curve; the caller then runs EVP_PKEY_public_check once.
/// Why: OSSL_PARAM arrays hold raw pointers; building them here keeps their storage stable.
static inline EVP_PKEY *m2m_ec_public_from_point(const char *group, const unsigned char *point, size_t length) {
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL) return NULL;
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)point, length);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/// An EC key pair from a raw private scalar (big-endian); the public point is computed here.
/// Why: OpenSSL 3's fromdata does not derive the public key, and BIGNUM params need a builder.
static inline EVP_PKEY *m2m_ec_private_from_scalar(const char *group, int nid, const unsigned char *scalar, size_t length) {
    EVP_PKEY *pkey = NULL;
    EC_GROUP *ecgroup = EC_GROUP_new_by_curve_name(nid);
    BIGNUM *d = BN_bin2bn(scalar, (int)length, NULL);
    EC_POINT *point = ecgroup ? EC_POINT_new(ecgroup) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    unsigned char pub[133];
    size_t publen = 0;
    if (ecgroup && d && point && bld && ctx && !BN_is_zero(d) && BN_cmp(d, EC_GROUP_get0_order(ecgroup)) < 0
        && EC_POINT_mul(ecgroup, point, d, NULL, NULL, NULL) == 1
        && (publen = EC_POINT_point2oct(ecgroup, point, POINT_CONVERSION_UNCOMPRESSED, pub, sizeof pub, NULL)) > 0
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1
        && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, publen) == 1
        && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
        && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    } else if (ecgroup && d && (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(ecgroup)) >= 0)) {
        ERR_raise_data(ERR_LIB_EC, EC_R_INVALID_PRIVATE_KEY, "scalar out of range");
    }
    OPENSSL_cleanse(pub, sizeof pub);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EC_POINT_free(point);
    BN_clear_free(d);
    EC_GROUP_free(ecgroup);
    return pkey;
}

/// An EC key holding only a private scalar (no public point), for ECDH alone. The caller checks
/// 1 ≤ d < n. Why: computing d·G (378 µs on brainpoolP256r1) and building the group twice is most
/// of an import; ECDH (EVP_PKEY_derive) needs only d. Measured ~27 µs instead of ~85 µs on P-256.
static inline EVP_PKEY *m2m_ec_agreement_from_scalar(const char *group, const unsigned char *scalar, size_t length) {
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = BN_bin2bn(scalar, (int)length, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (d && bld && ctx && !BN_is_zero(d)
        && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) == 1
        && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL
        && EVP_PKEY_fromdata_init(ctx) == 1) {
        if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_clear_free(d);
    return pkey;
}

/// The private scalar, big-endian, left-padded to `length`. Returns 1 on success.
static inline int m2m_ec_private_scalar(const EVP_PKEY *pkey, unsigned char *out, size_t length) {
    BIGNUM *d = NULL;
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1) return 0;
    int ok = BN_bn2binpad(d, out, (int)length) == (int)length;
    BN_clear_free(d);
    return ok;
}

/// The uncompressed public point 04‖X‖Y. Returns its length, or 0.
static inline size_t m2m_ec_public_point(const EVP_PKEY *pkey, unsigned char *out, size_t capacity) {
    size_t length = 0;
    if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, capacity, &length) != 1) return 0;
    return length;
}

/// DER ECDSA-Sig-Value → plain r‖s (each `half` bytes). Returns 1 on success.
/// Why: ECDSA_SIG and BIGNUM juggling in one place; GP certificates and SGP.02 use r‖s.
static inline int m2m_ecdsa_der_to_raw(const unsigned char *der, size_t derlen, unsigned char *out, size_t half) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (sig == NULL) return 0;
    int ok = (size_t)(p - der) == derlen
        && BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, (int)half) == (int)half
        && BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + half, (int)half) == (int)half;
    ECDSA_SIG_free(sig);
    return ok;
}

/// Plain r‖s → DER ECDSA-Sig-Value. Returns the DER length (≤ capacity), or 0.
static inline size_t m2m_ecdsa_raw_to_der(const unsigned char *raw, size_t half, unsigned char *out, size_t capacity) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(raw + half, (int)half, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        ECDSA_SIG_free(sig);
        BN_free(r);
        BN_free(s);
        return 0;
    }
    int length = i2d_ECDSA_SIG(sig, NULL);
    size_t result = 0;
    if (length > 0 && (size_t)length <= capacity) {
        unsigned char *p = out;
        result = (size_t)i2d_ECDSA_SIG(sig, &p);
    }
    ECDSA_SIG_free(sig);
    return result;
}

// MARK: - ECDSA verification with a precomputed table for a long-lived P-256 key

/// What verifies many signatures by one P-256 key (an EUM's, the CI's) faster than EVP_PKEY_verify:
/// `g` is P-256 as OpenSSL builds it (its generator G has OpenSSL's built-in table), `q` a copy of P-256
/// whose generator is the key's point Q, with OpenSSL's own table of multiples of it. u1·G and u2·Q are
/// then both fixed-base multiplications (EC_POINT_mul with the scalar only). Immutable after
/// creation, so threads share it. Why: EVP computes u2·Q from scratch on every call; on this machine a
/// verification takes 59 us through EVP and 34 us with both tables (C loop; docs/crypto.md). The table
/// is ~150 KB by OpenSSL's layout (37 rows of 64 points of 64 bytes; not measured) and took ~20 ms to build. Only for P-256: OpenSSL's nistz256 code honours a table for a
/// custom generator; the generic code (brainpoolP256r1) measured twice as slow with one.
typedef struct m2m_fixed_verifier { EC_GROUP *g; EC_GROUP *q; BIGNUM *order; } m2m_fixed_verifier;

static inline void m2m_fixed_verifier_free(m2m_fixed_verifier *v) {
    if (v == NULL) return;
    EC_GROUP_free(v->g);
    EC_GROUP_free(v->q);
    BN_free(v->order);
    OPENSSL_free(v);
}

/// The verifier of the P-256 public key `point` (uncompressed or compressed), or NULL (not on the
/// curve, no memory, or an OpenSSL built without the 3.0 deprecated API EC_GROUP_precompute_mult: the
/// caller then verifies through EVP).
static inline m2m_fixed_verifier *m2m_fixed_verifier_new_p256(const unsigned char *point, size_t length) {
#if defined(OPENSSL_NO_DEPRECATED_3_0)
    (void)point; (void)length;
    return NULL;
#else
    m2m_fixed_verifier *v = OPENSSL_zalloc(sizeof(m2m_fixed_verifier));
    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *q = NULL;
    int ok = 0;
    if (v == NULL || ctx == NULL) goto done;
    v->g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    if (v->g == NULL) goto done;
    v->q = EC_GROUP_dup(v->g);
    v->order = BN_dup(EC_GROUP_get0_order(v->g));
    if (v->q == NULL || v->order == NULL) goto done;
    q = EC_POINT_new(v->q);
    if (q == NULL || EC_POINT_oct2point(v->q, q, point, length, ctx) != 1) goto done;
    if (EC_POINT_is_at_infinity(v->q, q) || EC_POINT_is_on_curve(v->q, q, ctx) != 1) goto done;
    /* P-256 has cofactor 1: every finite point on the curve has the group's order. */
    if (EC_GROUP_set_generator(v->q, q, v->order, EC_GROUP_get0_cofactor(v->g)) != 1) goto done;
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
    if (EC_GROUP_precompute_mult(v->q, ctx) != 1) goto done;
#pragma clang diagnostic pop
    ok = 1;
done:
    EC_POINT_free(q);
    BN_CTX_free(ctx);
    if (!ok) {
        m2m_fixed_verifier_free(v);
        return NULL;
    }
    return v;
#endif
}

/// ECDSA verification (SEC 1 §4.1.4) of plain r‖s (32 + 32 bytes) over a 32-byte digest: 1 valid,
/// 0 not valid, -1 OpenSSL failed (no memory). r and s must lie in [1, n-1]; R = u1·G + u2·Q must not
/// be the point at infinity; R.x mod n must equal r. (The digest is as long as n, so it is used whole.)
static inline int m2m_fixed_verifier_verify(const m2m_fixed_verifier *v, const unsigned char *digest, const unsigned char *rs) {
    int result = -1;
    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *r1 = NULL, *r2 = NULL;
    if (ctx == NULL) return -1;
    BN_CTX_start(ctx);
    BIGNUM *r = BN_CTX_get(ctx), *s = BN_CTX_get(ctx), *e = BN_CTX_get(ctx), *w = BN_CTX_get(ctx);
    BIGNUM *u1 = BN_CTX_get(ctx), *u2 = BN_CTX_get(ctx), *x = BN_CTX_get(ctx);
    r1 = EC_POINT_new(v->g);
    r2 = EC_POINT_new(v->q);
    if (x == NULL || r1 == NULL || r2 == NULL) goto done;
    if (BN_bin2bn(rs, 32, r) == NULL || BN_bin2bn(rs + 32, 32, s) == NULL || BN_bin2bn(digest, 32, e) == NULL) goto done;
    if (BN_is_zero(r) || BN_is_zero(s) || BN_cmp(r, v->order) >= 0 || BN_cmp(s, v->order) >= 0) { result = 0; goto done; }
    if (BN_mod_inverse(w, s, v->order, ctx) == NULL) goto done;
    if (BN_mod_mul(u1, e, w, v->order, ctx) != 1 || BN_mod_mul(u2, r, w, v->order, ctx) != 1) goto done;
    if (EC_POINT_mul(v->g, r1, u1, NULL, NULL, ctx) != 1 || EC_POINT_mul(v->q, r2, u2, NULL, NULL, ctx) != 1) goto done;
    if (EC_POINT_add(v->g, r1, r1, r2, ctx) != 1) goto done;
    if (EC_POINT_is_at_infinity(v->g, r1)) { result = 0; goto done; }
    if (EC_POINT_get_affine_coordinates(v->g, r1, x, NULL, ctx) != 1 || BN_nnmod(x, x, v->order, ctx) != 1) goto done;
    result = BN_cmp(x, r) == 0 ? 1 : 0;
done:
    EC_POINT_free(r1);
    EC_POINT_free(r2);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return result;
}

/// ANSI X9.63 KDF (SHA-256) with the KDF fetched by the caller once.
/// Why: the OSSL_PARAM array points into the caller's buffers only for the duration of this call.
static inline int m2m_x963kdf(EVP_KDF *kdf, const unsigned char *secret, size_t secretlen,
                              const unsigned char *info, size_t infolen, unsigned char *out, size_t outlen) {
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    if (ctx == NULL) return 0;
    OSSL_PARAM params[4];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secretlen);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, infolen);
    params[3] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(ctx, out, outlen, params);
    EVP_KDF_CTX_free(ctx);
    return ok;
}

/// Initialises a CMAC context for an AES key (cipher name chosen by key length).
/// Why: OSSL_PARAM with a string that must outlive the init call.
static inline int m2m_cmac_init(EVP_MAC_CTX *ctx, const unsigned char *key, size_t keylen) {
    const char *cipher = keylen == 16 ? "AES-128-CBC" : keylen == 24 ? "AES-192-CBC" : "AES-256-CBC";
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)cipher, 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_init(ctx, key, keylen, params);
}

/// Builds and signs an X.509 v3 certificate (ECDSA-SHA256). `issuer`/`issuerKey` NULL = self-signed.
/// Extensions use OpenSSL's config syntax (e.g. "critical,CA:TRUE", "RID:1.3.6.1.4.1.99999.2.1").
/// Why: X509V3_CTX and X509_NAME plumbing is long-winded and pointer-heavy; one C frame owns it.
static inline X509 *m2m_x509_build(EVP_PKEY *subjectKey, EVP_PKEY *issuerKey, X509 *issuer,
                                   const char *country, const char *organization, const char *commonName,
                                   const unsigned char *serial, size_t seriallen, long notBeforeOffset, long validitySeconds,
                                   const char *basicConstraints, const char *keyUsage, const char *extendedKeyUsage,
                                   const char *subjectAltName, const char *certificatePolicies) {
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *bn = BN_bin2bn(serial, (int)seriallen, NULL);
    int ok = x && name && bn
        && X509_set_version(x, X509_VERSION_3) == 1
        && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL
        && (country == NULL || X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8, (const unsigned char *)country, -1, -1, 0) == 1)
        && (organization == NULL || X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)organization, -1, -1, 0) == 1)
        && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)commonName, -1, -1, 0) == 1
        && X509_set_subject_name(x, name) == 1
        && X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1
        && X509_gmtime_adj(X509_getm_notBefore(x), notBeforeOffset) != NULL
        && X509_gmtime_adj(X509_getm_notAfter(x), validitySeconds) != NULL
        && X509_set_pubkey(x, subjectKey) == 1;
    if (ok) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        const int nids[] = { NID_basic_constraints, NID_key_usage, NID_ext_key_usage, NID_subject_alt_name,
                             NID_certificate_policies, NID_subject_key_identifier, NID_authority_key_identifier };
        const char *values[] = { basicConstraints, keyUsage, extendedKeyUsage, subjectAltName, certificatePolicies,
                                 "hash", issuer ? "keyid:always" : NULL };
        for (int i = 0; ok && i < 7; i++) {
            if (values[i] == NULL) continue;
            X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nids[i], (char *)values[i]);
            ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
            X509_EXTENSION_free(ext);
        }
    }
    ok = ok && X509_sign(x, issuerKey ? issuerKey : subjectKey, EVP_sha256()) > 0;
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/// Verifies `leaf` up to the trust anchor `root` through `intermediates` (X509_STORE_CTX), at
/// `atTime` (seconds since the epoch; 0 = now). Returns 1, or 0 with the reason in `error`.
static inline int m2m_x509_verify_chain(X509 *leaf, X509 **intermediates, int count, X509 *root, long atTime, int *error, int *depth) {
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    int ok = 0;
    *error = 0;
    *depth = -1;
    if (store && ctx && chain && X509_STORE_add_cert(store, root) == 1) {
        for (int i = 0; i < count; i++) sk_X509_push(chain, intermediates[i]);
        if (X509_STORE_CTX_init(ctx, store, leaf, chain) == 1) {
            if (atTime != 0) X509_STORE_CTX_set_time(ctx, 0, (time_t)atTime);
            X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
            ok = X509_verify_cert(ctx) == 1;
            if (!ok) {
                *error = X509_STORE_CTX_get_error(ctx);
                *depth = X509_STORE_CTX_get_error_depth(ctx);
            }
        }
    }
    sk_X509_free(chain);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

/// PEM encoding of a certificate into `out` (capacity bytes). Returns the length, or 0.
static inline size_t m2m_x509_pem(X509 *x, char *out, size_t capacity) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL || PEM_write_bio_X509(bio, x) != 1) { BIO_free(bio); return 0; }
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    size_t result = 0;
    if (length > 0 && (size_t)length <= capacity) {
        memcpy(out, data, (size_t)length);
        result = (size_t)length;
    }
    BIO_free(bio);
    return result;
}

/// A certificate from PEM text.
static inline X509 *m2m_x509_from_pem(const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return x;
}

/// The subject or issuer as a one-line RFC 2253 string. Returns the length, or 0.
static inline size_t m2m_x509_name(X509 *x, int issuer, char *out, size_t capacity) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) return 0;
    X509_NAME_print_ex(bio, issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
    char *data = NULL;
    long length = BIO_get_mem_data(bio, &data);
    size_t result = 0;
    if (length > 0 && (size_t)length < capacity) {
        memcpy(out, data, (size_t)length);
        result = (size_t)length;
    }
    BIO_free(bio);
    return result;
}

/// The subjectAltName registeredID entries (dotted OIDs), one per line. Returns the length written.
/// Why: the GENERAL_NAMES stack accessors are macros.
static inline size_t m2m_x509_registered_ids(X509 *x, char *out, size_t capacity) {
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return 0;
    size_t used = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_RID) continue;
        char text[128];
        int length = OBJ_obj2txt(text, sizeof text, name->d.registeredID, 1);
        if (length <= 0 || (size_t)length >= sizeof text || used + (size_t)length + 1 >= capacity) continue;
        memcpy(out + used, text, (size_t)length);
        used += (size_t)length;
        out[used++] = '\n';
    }
    GENERAL_NAMES_free(names);
    return used;
}

/// The certificate's notAfter as seconds since 1970 (0 when unreadable).
static inline long long m2m_x509_not_after(X509 *x) {
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) return 0;
    return (long long)timegm(&tm);
}

// MARK: - libssl (SCP81 PSK-TLS)

/// TLS 1.2 only, no session cache, no tickets, no renegotiation: SGP.02 SCP81 (spec §3.4) allows
/// neither resumption nor parallel sessions. Why: the protocol-version and cache setters are macros.
static inline int m2m_ssl_ctx_configure_psk_tls12(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    if (SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    return 1;
}

/// Bytes waiting in a memory BIO. Why: BIO_pending is a macro.
static inline size_t m2m_bio_pending(BIO *bio) { return (size_t)BIO_ctrl_pending(bio); }

/// The connection object of an SSL (ex_data slot 0). Why: SSL_get_app_data/SSL_set_app_data are macros.
static inline void *m2m_ssl_get_app_data(const SSL *ssl) { return SSL_get_ex_data(ssl, 0); }
static inline int m2m_ssl_set_app_data(SSL *ssl, void *data) { return SSL_set_ex_data(ssl, 0, data); }

#endif
