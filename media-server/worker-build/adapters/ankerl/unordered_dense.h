// ankerl::unordered_dense (a header-only hash map, not packaged by Debian) as
// mediasoup-worker 3.27 uses it, over the standard containers. Written for
// this project (see ../../README.md, "Adapters"); not part of unordered_dense.
//
// The worker uses `map`, `set` and `hash<T>` only, through the interface
// std::unordered_map/set share with them (find, contains, emplace,
// try_emplace, erase, iteration). Two differences that the worker does not
// rely on: iteration order (unordered_dense iterates in insertion order until
// an erase; std in bucket order) and pointer stability (std keeps references
// valid across inserts, unordered_dense does not: std is the safer side).
//
// `hash<T>` for integers mixes its bits (the worker combines such hashes of
// addresses and ports into one key, and libstdc++'s std::hash of an integer is
// the identity); other types use std::hash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

namespace ankerl::unordered_dense
{
	namespace detail
	{
		// The 64-bit finaliser of MurmurHash3: every input bit affects every output bit.
		constexpr std::uint64_t Mix(std::uint64_t x) noexcept
		{
			x ^= x >> 33;
			x *= 0xff51afd7ed558ccdULL;
			x ^= x >> 33;
			x *= 0xc4ceb9fe1a85ec53ULL;
			x ^= x >> 33;

			return x;
		}
	} // namespace detail

	template<class T, class Enable = void>
	struct hash : std::hash<T>
	{
	};

	template<class T>
	struct hash<T, std::enable_if_t<std::is_integral_v<T>>>
	{
		using is_avalanching = void;

		std::size_t operator()(T value) const noexcept
		{
			return static_cast<std::size_t>(detail::Mix(static_cast<std::uint64_t>(value)));
		}
	};

	template<class Key, class T, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>>
	using map = std::unordered_map<Key, T, Hash, KeyEqual>;

	template<class Key, class Hash = hash<Key>, class KeyEqual = std::equal_to<Key>>
	using set = std::unordered_set<Key, Hash, KeyEqual>;
} // namespace ankerl::unordered_dense
