// Checks the libsrtp v3 adapter (../adapters/srtp3/srtp.h) against Debian's
// libsrtp2, the way mediasoup's SrtpSession uses it: policies built through
// the handle, out-of-place protect, in-place unprotect, RTCP, the two v3 error
// codes and stream removal. Compiled and run by media-server/test/worker-build.test.ts.
// Prints one line per check and exits non-zero on the first failure.
#include <srtp.h>
#include <arpa/inet.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

static int checks = 0;

#define CHECK(cond)                                                                      \
	do                                                                                     \
	{                                                                                      \
		checks++;                                                                            \
		if (!(cond))                                                                         \
		{                                                                                    \
			std::printf("FAIL %s:%d %s\n", __FILE__, __LINE__, #cond);                         \
			std::exit(1);                                                                      \
		}                                                                                    \
	} while (0)

static srtp_t makeSession(srtp_ssrc_type_t direction, srtp_profile_t profile, const std::vector<uint8_t>& keySalt)
{
	srtp_policy_t policy{ nullptr };
	CHECK(srtp_policy_create(&policy) == srtp_err_status_ok);
	srtp_ssrc_t ssrc{};
	ssrc.type  = direction;
	ssrc.value = 0;
	CHECK(srtp_policy_set_ssrc(policy, ssrc) == srtp_err_status_ok);
	CHECK(srtp_policy_set_profile(policy, profile) == srtp_err_status_ok);
	const size_t keyLen  = srtp_profile_get_master_key_length(profile);
	const size_t saltLen = srtp_profile_get_master_salt_length(profile);
	CHECK(keySalt.size() == keyLen + saltLen);
	CHECK(srtp_policy_add_key(policy, keySalt.data(), keyLen, keySalt.data() + keyLen, saltLen, nullptr, 0) == srtp_err_status_ok);
	// A second key (v3 would add an MKI key) is refused: the adapter supports one.
	CHECK(srtp_policy_add_key(policy, keySalt.data(), keyLen, keySalt.data() + keyLen, saltLen, nullptr, 0) == srtp_err_status_bad_param);
	CHECK(srtp_policy_set_allow_repeat_tx(policy, true) == srtp_err_status_ok);
	CHECK(srtp_policy_set_window_size(policy, 1024) == srtp_err_status_ok);
	srtp_t session{ nullptr };
	CHECK(srtp_create(&session, policy) == srtp_err_status_ok);
	// The session keeps nothing of the policy: destroying it first must be safe.
	srtp_policy_destroy(policy);
	CHECK(session != nullptr);
	return session;
}

static std::vector<uint8_t> rtpPacket(uint32_t ssrc, uint16_t seq, size_t payloadLen)
{
	std::vector<uint8_t> packet(12 + payloadLen);
	packet[0]  = 0x80;
	packet[1]  = 96;
	packet[2]  = seq >> 8;
	packet[3]  = seq & 0xff;
	packet[4]  = 0;
	packet[5]  = 0;
	packet[6]  = 0x12;
	packet[7]  = 0x34;
	packet[8]  = ssrc >> 24;
	packet[9]  = (ssrc >> 16) & 0xff;
	packet[10] = (ssrc >> 8) & 0xff;
	packet[11] = ssrc & 0xff;
	for (size_t i = 0; i < payloadLen; i++)
		packet[12 + i] = static_cast<uint8_t>(i * 7 + seq);
	return packet;
}

static void roundTrip(srtp_profile_t profile, size_t keySaltLen, const char* name)
{
	std::vector<uint8_t> keySalt(keySaltLen);
	for (size_t i = 0; i < keySaltLen; i++)
		keySalt[i] = static_cast<uint8_t>(i * 13 + 1);
	srtp_t sender   = makeSession(ssrc_any_outbound, profile, keySalt);
	srtp_t receiver = makeSession(ssrc_any_inbound, profile, keySalt);

	for (uint16_t seq = 1000; seq < 1010; seq++)
	{
		const auto plain = rtpPacket(0x11223344, seq, 160);
		uint8_t out[2048];
		size_t outLen = sizeof(out);
		CHECK(srtp_protect(sender, plain.data(), plain.size(), out, &outLen, 0) == srtp_err_status_ok);
		CHECK(outLen > plain.size());
		// Out of place: the input is untouched, the payload in the output is encrypted.
		CHECK(std::memcmp(plain.data(), rtpPacket(0x11223344, seq, 160).data(), plain.size()) == 0);
		CHECK(std::memcmp(out + 12, plain.data() + 12, 160) != 0);
		// In place, as mediasoup's DecryptSrtp() calls it.
		size_t len = outLen;
		CHECK(srtp_unprotect(receiver, out, outLen, out, &len) == srtp_err_status_ok);
		CHECK(len == plain.size());
		CHECK(std::memcmp(out, plain.data(), len) == 0);
	}

	// A tampered packet fails authentication.
	{
		const auto plain = rtpPacket(0x11223344, 2000, 100);
		uint8_t out[2048];
		size_t outLen = sizeof(out);
		CHECK(srtp_protect(sender, plain.data(), plain.size(), out, &outLen, 0) == srtp_err_status_ok);
		out[20] ^= 0x01;
		size_t len = outLen;
		CHECK(srtp_unprotect(receiver, out, outLen, out, &len) == srtp_err_status_auth_fail);
	}

	// v3's output capacity: too small a buffer is error 28, and nothing is written.
	{
		const auto plain = rtpPacket(0x11223344, 3000, 100);
		uint8_t out[120];
		std::memset(out, 0xee, sizeof(out));
		size_t outLen = sizeof(out);
		CHECK(srtp_protect(sender, plain.data(), plain.size(), out, &outLen, 0) == srtp_err_status_buffer_small);
		CHECK(static_cast<int>(srtp_err_status_buffer_small) == 28);
		CHECK(static_cast<int>(srtp_err_status_cryptex_err) == 29);
		CHECK(out[0] == 0xee);
		// An MKI index without MKI keys.
		outLen = sizeof(out);
		CHECK(srtp_protect(sender, plain.data(), plain.size(), out, &outLen, 1) == srtp_err_status_bad_mki);
	}

	// RTCP: a receiver report, out of place then in place.
	{
		uint8_t rtcp[8] = { 0x80, 201, 0x00, 0x01, 0x11, 0x22, 0x33, 0x44 };
		uint8_t out[512];
		size_t outLen = sizeof(out);
		CHECK(srtp_protect_rtcp(sender, rtcp, sizeof(rtcp), out, &outLen, 0) == srtp_err_status_ok);
		CHECK(outLen > sizeof(rtcp));
		size_t len = outLen;
		CHECK(srtp_unprotect_rtcp(receiver, out, outLen, out, &len) == srtp_err_status_ok);
		CHECK(len == sizeof(rtcp));
		CHECK(std::memcmp(out, rtcp, sizeof(rtcp)) == 0);
	}

	// Removing a stream (network byte order, as mediasoup passes it): a second removal finds none.
	CHECK(srtp_stream_remove(receiver, htonl(0x11223344)) == srtp_err_status_ok);
	CHECK(srtp_stream_remove(receiver, htonl(0x11223344)) != srtp_err_status_ok);

	CHECK(srtp_dealloc(sender) == srtp_err_status_ok);
	CHECK(srtp_dealloc(receiver) == srtp_err_status_ok);
	std::printf("ok %s\n", name);
}

int main()
{
	CHECK(srtp_init() == srtp_err_status_ok);
	roundTrip(srtp_profile_aes128_cm_sha1_80, 30, "AES_CM_128_HMAC_SHA1_80");
	roundTrip(srtp_profile_aes128_cm_sha1_32, 30, "AES_CM_128_HMAC_SHA1_32");
	roundTrip(srtp_profile_aead_aes_128_gcm, 28, "AEAD_AES_128_GCM");
	roundTrip(srtp_profile_aead_aes_256_gcm, 44, "AEAD_AES_256_GCM");
	// A policy without a key cannot make a session.
	srtp_policy_t policy{ nullptr };
	CHECK(srtp_policy_create(&policy) == srtp_err_status_ok);
	CHECK(srtp_policy_set_profile(policy, srtp_profile_aes128_cm_sha1_80) == srtp_err_status_ok);
	srtp_t session{ nullptr };
	CHECK(srtp_create(&session, policy) == srtp_err_status_bad_param);
	srtp_policy_destroy(policy);
	CHECK(srtp_shutdown() == srtp_err_status_ok);
	std::printf("%d checks passed\n", checks);
	return 0;
}
