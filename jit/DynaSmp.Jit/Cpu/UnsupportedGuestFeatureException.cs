namespace DynaSmp.Jit.Cpu;

/// <summary>The guest used an architectural feature DynaSmp does not model; reported as an
/// <see cref="ExitReason.Unsupported"/> exit naming the feature, never as a host crash.</summary>
public sealed class UnsupportedGuestFeatureException(string feature) : Exception(feature);
