/* SPDX-License-Identifier: MIT */
/*
 * Strict base64 and base64url (RFC 4648 sections 4 and 5) on top of OpenSSL's EVP_EncodeBlock and
 * EVP_DecodeBlock. OpenSSL's block decoder is lenient (it skips surrounding whitespace and cannot
 * tell padding bytes from data), so every input is checked here first: alphabet, length, padding
 * position and zero unused bits. Tokens and keys therefore have exactly one accepted spelling.
 */
#include <openssl/evp.h>

#include "adi/crypto.h"
#include "crypto_int.h"

/* Bytes encoded per EVP_EncodeBlock call: a multiple of 3 that keeps the int arguments small. */
#define ENCODE_CHUNK (3u * 16384u)

/* The 6-bit value of `c` in the standard (url = false) or url alphabet, or -1. */
static int b64_value(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

/* The standard-alphabet character for value `v` (0..63). */
static char std_char(int v)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return alphabet[v];
}

/* Encodes whole 3-byte groups of `in` (n a multiple of 3) into `out`; returns the chars written. */
static size_t encode_groups(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    while (n > 0) {
        size_t chunk = n > ENCODE_CHUNK ? ENCODE_CHUNK : n;
        int w = EVP_EncodeBlock((unsigned char *)out + o, in, (int)chunk);
        if (w < 0)
            adi_crypto__fatal("EVP_EncodeBlock");
        o += (size_t)w;
        in += chunk;
        n -= chunk;
    }
    return o;
}

adi_err adi_b64_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len,
                       adi_error_t *err)
{
    if (out_len != NULL)
        *out_len = 0;
    size_t need = ADI_B64_LEN(n);
    if (out == NULL || out_cap < need + 1)
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small for base64.");
    const unsigned char *p = in;
    size_t whole = n - n % 3;
    size_t o = encode_groups(p, whole, out);
    if (n % 3 != 0) {
        unsigned char tail[5];
        if (EVP_EncodeBlock(tail, p + whole, (int)(n % 3)) != 4)
            adi_crypto__fatal("EVP_EncodeBlock");
        memcpy(out + o, tail, 4);
        o += 4;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return ADI_OK;
}

adi_err adi_b64url_encode(const void *in, size_t n, char *out, size_t out_cap, size_t *out_len,
                          adi_error_t *err)
{
    if (out_len != NULL)
        *out_len = 0;
    size_t need = ADI_B64URL_LEN(n);
    if (out == NULL || out_cap < need + 1)
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small for base64url.");
    const unsigned char *p = in;
    size_t whole = n - n % 3;
    size_t o = encode_groups(p, whole, out);
    if (n % 3 != 0) {
        unsigned char tail[5];
        if (EVP_EncodeBlock(tail, p + whole, (int)(n % 3)) != 4)
            adi_crypto__fatal("EVP_EncodeBlock");
        size_t keep = n % 3 + 1; /* drop the '=' padding */
        memcpy(out + o, tail, keep);
        o += keep;
    }
    for (size_t i = 0; i < o; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return ADI_OK;
}

/*
 * Decodes `in` quantum by quantum: each group of up to four characters is checked, rewritten in
 * the standard alphabet with '=' padding and handed to EVP_DecodeBlock, which yields three bytes
 * of which the unpadded ones are kept. `url` selects base64url without padding.
 */
static adi_err decode(adi_str_t in, bool url, unsigned char *out, size_t out_cap, size_t *out_len,
                      adi_error_t *err)
{
    const char *what = url ? "Invalid base64url." : "Invalid base64.";
    if (out_len != NULL)
        *out_len = 0;
    if (in.ptr == NULL && in.len > 0)
        return adi_error_set(err, ADI_INVALID, "%s", what);
    size_t data = in.len; /* characters that carry bits */
    if (url) {
        if (data % 4 == 1)
            return adi_error_set(err, ADI_INVALID, "%s", what);
    } else {
        if (data % 4 != 0)
            return adi_error_set(err, ADI_INVALID, "%s", what);
        if (data > 0 && in.ptr[data - 1] == '=')
            data--;
        if (data > 0 && in.ptr[data - 1] == '=')
            data--;
        /* "xx==" pads two, "xxx=" one; "x===" was caught by the count below. */
        if (data % 4 == 1)
            return adi_error_set(err, ADI_INVALID, "%s", what);
    }
    size_t total = (data / 4) * 3 + (data % 4 == 0 ? 0 : data % 4 - 1);
    if (out == NULL ? total > 0 : out_cap < total)
        return adi_error_set(err, ADI_TOO_LARGE, "Output buffer too small for base64.");
    size_t o = 0;
    for (size_t i = 0; i < data; i += 4) {
        size_t k = data - i < 4 ? data - i : 4;
        unsigned char quad[4] = {'=', '=', '=', '='};
        int last = 0;
        for (size_t j = 0; j < k; j++) {
            last = b64_value((unsigned char)in.ptr[i + j], url);
            if (last < 0)
                return adi_error_set(err, ADI_INVALID, "%s", what);
            quad[j] = (unsigned char)std_char(last);
        }
        /* The unused low bits of the last character of a short quantum must be zero. */
        if ((k == 2 && (last & 0x0f) != 0) || (k == 3 && (last & 0x03) != 0))
            return adi_error_set(err, ADI_INVALID, "%s", what);
        unsigned char three[4];
        if (EVP_DecodeBlock(three, quad, 4) != 3)
            return adi_error_set(err, ADI_INVALID, "%s", what);
        size_t keep = k - 1;
        memcpy(out + o, three, keep);
        o += keep;
        OPENSSL_cleanse(three, sizeof(three));
    }
    if (out_len != NULL)
        *out_len = o;
    return ADI_OK;
}

adi_err adi_b64_decode(adi_str_t in, unsigned char *out, size_t out_cap, size_t *out_len,
                       adi_error_t *err)
{
    return decode(in, false, out, out_cap, out_len, err);
}

adi_err adi_b64url_decode(adi_str_t in, unsigned char *out, size_t out_cap, size_t *out_len,
                          adi_error_t *err)
{
    return decode(in, true, out, out_cap, out_len, err);
}
