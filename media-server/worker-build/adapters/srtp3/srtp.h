// libsrtp v3's API, as mediasoup-worker 3.27 uses it, over Debian's libsrtp2
// (2.5). Written for this project (see ../../README.md, "Adapters"); not part
// of libsrtp. Header-only: everything the worker calls that v2 lacks or
// declares differently is an inline C++ function here, so the worker's own
// sources compile unchanged against `#include <srtp.h>`.
//
// What differs between the two APIs, and how it is bridged:
// - v3's `srtp_policy_t` is an opaque handle built with srtp_policy_create()
//   and set_*()/add_key(); v2's is a plain struct. v2's struct is renamed
//   `srtp2_policy_t` while its header is read, and the handle here owns one
//   (plus the master key + salt, which v2 wants as one buffer).
// - v3 protects and unprotects out of place with size_t lengths and a
//   capacity for the output; v2 works in place with int lengths. The input is
//   copied to the output buffer first (the worker passes the same buffer to
//   unprotect, so that copy is skipped there).
// - v3 adds two error codes (28 buffer_small, 29 cryptex_err). v2's enum
//   holds values up to 31 (its enumerators span 5 bits), so they are values
//   of the same enum type.
// - v3 renames srtp_remove_stream() to srtp_stream_remove().
#pragma once

#ifndef __cplusplus
#error "this adapter is C++ only (mediasoup-worker is C++)"
#endif

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

#define srtp_policy_t srtp2_policy_t
#include <srtp2/srtp.h>
#undef srtp_policy_t

inline constexpr srtp_err_status_t srtp_err_status_buffer_small = static_cast<srtp_err_status_t>(28);
inline constexpr srtp_err_status_t srtp_err_status_cryptex_err  = static_cast<srtp_err_status_t>(29);

struct ms_srtp3_policy
{
	srtp2_policy_t policy;
	// Master key followed by master salt: v2 reads them as one buffer.
	unsigned char keyAndSalt[SRTP_MAX_KEY_LEN];
	bool hasProfile;
	bool hasKey;
};

typedef ms_srtp3_policy* srtp_policy_t;

inline srtp_err_status_t srtp_policy_create(srtp_policy_t* policy)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	auto* created = new (std::nothrow) ms_srtp3_policy{};

	if (created == nullptr)
		return srtp_err_status_alloc_fail;

	created->policy.key         = created->keyAndSalt;
	created->policy.window_size = 128;
	created->policy.next        = nullptr;
	*policy                     = created;

	return srtp_err_status_ok;
}

inline void srtp_policy_destroy(srtp_policy_t policy)
{
	if (policy == nullptr)
		return;

	// Key material is not left behind in freed memory.
	std::memset(policy->keyAndSalt, 0, sizeof(policy->keyAndSalt));
	delete policy;
}

inline srtp_err_status_t srtp_policy_set_ssrc(srtp_policy_t policy, srtp_ssrc_t ssrc)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	policy->policy.ssrc = ssrc;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_profile(srtp_policy_t policy, srtp_profile_t profile)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	srtp_err_status_t err = srtp_crypto_policy_set_from_profile_for_rtp(&policy->policy.rtp, profile);

	if (err != srtp_err_status_ok)
		return err;

	err = srtp_crypto_policy_set_from_profile_for_rtcp(&policy->policy.rtcp, profile);

	if (err != srtp_err_status_ok)
		return err;

	policy->hasProfile = true;

	return srtp_err_status_ok;
}

// v2 has one key per policy without MKI in the form used here; the worker
// never uses MKI, so a key with an MKI is refused rather than half-supported.
inline srtp_err_status_t srtp_policy_add_key(
  srtp_policy_t policy,
  const uint8_t* key,
  size_t key_len,
  const uint8_t* salt,
  size_t salt_len,
  const uint8_t* mki,
  size_t mki_len)
{
	if (policy == nullptr || key == nullptr || salt == nullptr)
		return srtp_err_status_bad_param;

	if (mki != nullptr || mki_len != 0 || policy->hasKey)
		return srtp_err_status_bad_param;

	if (key_len + salt_len > sizeof(policy->keyAndSalt))
		return srtp_err_status_bad_param;

	std::memcpy(policy->keyAndSalt, key, key_len);
	std::memcpy(policy->keyAndSalt + key_len, salt, salt_len);
	policy->hasKey = true;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_allow_repeat_tx(srtp_policy_t policy, bool allow)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	policy->policy.allow_repeat_tx = allow ? 1 : 0;

	return srtp_err_status_ok;
}

inline srtp_err_status_t srtp_policy_set_window_size(srtp_policy_t policy, size_t windowSize)
{
	if (policy == nullptr)
		return srtp_err_status_bad_param;

	policy->policy.window_size = static_cast<unsigned long>(windowSize);

	return srtp_err_status_ok;
}

// v3: the policy is a handle. (An overload of v2's srtp_create, which takes a
// pointer to its struct.) v2 derives the session keys here and keeps no
// pointer into the policy, so the caller may destroy it right after.
inline srtp_err_status_t srtp_create(srtp_t* session, const srtp_policy_t policy)
{
	if (session == nullptr || policy == nullptr || !policy->hasProfile || !policy->hasKey)
		return srtp_err_status_bad_param;

	return srtp_create(session, static_cast<const srtp2_policy_t*>(&policy->policy));
}

namespace ms_srtp3
{
	using InPlace = srtp_err_status_t (*)(srtp_t, void*, int*);

	// v3's out-of-place call on v2's in-place one: copy the input into the
	// output buffer (unless they are the same), check the output's capacity
	// against the most v2 may write, then run v2 in place.
	inline srtp_err_status_t OutOfPlace(
	  InPlace inPlace,
	  srtp_t ctx,
	  const uint8_t* in,
	  size_t inLen,
	  uint8_t* out,
	  size_t* outLen,
	  size_t growth)
	{
		if (ctx == nullptr || in == nullptr || out == nullptr || outLen == nullptr)
			return srtp_err_status_bad_param;

		if (inLen > static_cast<size_t>(INT_MAX) - growth)
			return srtp_err_status_bad_param;

		if (*outLen < inLen + growth)
			return srtp_err_status_buffer_small;

		if (out != in)
			std::memmove(out, in, inLen);

		int len = static_cast<int>(inLen);
		const srtp_err_status_t err = inPlace(ctx, out, &len);

		if (err != srtp_err_status_ok)
			return err;

		*outLen = static_cast<size_t>(len);

		return srtp_err_status_ok;
	}
} // namespace ms_srtp3

// mki_index: the worker passes 0 with no MKI; v2's srtp_protect() is that case.
inline srtp_err_status_t srtp_protect(
  srtp_t ctx, const uint8_t* rtp, size_t rtp_len, uint8_t* srtp, size_t* srtp_len, size_t mki_index)
{
	if (mki_index != 0)
		return srtp_err_status_bad_mki;

	return ms_srtp3::OutOfPlace(
	  static_cast<ms_srtp3::InPlace>(srtp_protect), ctx, rtp, rtp_len, srtp, srtp_len, SRTP_MAX_TRAILER_LEN);
}

inline srtp_err_status_t srtp_unprotect(
  srtp_t ctx, const uint8_t* srtp, size_t srtp_len, uint8_t* rtp, size_t* rtp_len)
{
	return ms_srtp3::OutOfPlace(
	  static_cast<ms_srtp3::InPlace>(srtp_unprotect), ctx, srtp, srtp_len, rtp, rtp_len, 0);
}

inline srtp_err_status_t srtp_protect_rtcp(
  srtp_t ctx, const uint8_t* rtcp, size_t rtcp_len, uint8_t* srtcp, size_t* srtcp_len, size_t mki_index)
{
	if (mki_index != 0)
		return srtp_err_status_bad_mki;

	return ms_srtp3::OutOfPlace(
	  static_cast<ms_srtp3::InPlace>(srtp_protect_rtcp),
	  ctx,
	  rtcp,
	  rtcp_len,
	  srtcp,
	  srtcp_len,
	  SRTP_MAX_TRAILER_LEN);
}

inline srtp_err_status_t srtp_unprotect_rtcp(
  srtp_t ctx, const uint8_t* srtcp, size_t srtcp_len, uint8_t* rtcp, size_t* rtcp_len)
{
	return ms_srtp3::OutOfPlace(
	  static_cast<ms_srtp3::InPlace>(srtp_unprotect_rtcp), ctx, srtcp, srtcp_len, rtcp, rtcp_len, 0);
}

// v3's name; ssrc in network byte order, as v2's srtp_remove_stream() takes it.
inline srtp_err_status_t srtp_stream_remove(srtp_t session, uint32_t ssrc)
{
	return srtp_remove_stream(session, ssrc);
}
