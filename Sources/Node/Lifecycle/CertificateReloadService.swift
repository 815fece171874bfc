import ClusterPKI
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Reads the node's certificate and key again on every SIGHUP, so an operator can renew them
/// without a restart. Connections made afterwards use the new pair; open ones keep theirs.
/// Publishes when the certificate in use expires (`chorus_certificate_expiry_timestamp_seconds`)
/// and warns, at start, after each reload and twice a day, once it is within `warnAhead`.
struct CertificateReloadService: Service {
    let files: CertificateFiles
    let metrics: NodeMetrics
    let logger: Logger
    /// How long before expiry the log warns (30 days).
    var warnAhead: Duration = .seconds(30 * 86_400)

    func run() async {
        // Trapped by the sequence from here on; the node ignored SIGHUP since it started.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        checkExpiry()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await cancelWhenGracefulShutdown {
                    for await _ in hangups {
                        do {
                            let serial = try files.reload()
                            logger.info("SIGHUP: reloaded \(files.certificatePath) (serial \(serial)); new connections use it")
                        } catch {
                            logger.error("SIGHUP: cannot reload the certificate, keeping serial \(files.serial): \(error)")
                        }
                        checkExpiry()
                    }
                }
            }
            group.addTask {
                await cancelWhenGracefulShutdown {
                    while (try? await Task.sleep(for: .seconds(12 * 3_600))) != nil { checkExpiry() }
                }
            }
        }
    }

    func checkExpiry(now: Date = Date()) {
        let expiry = files.notValidAfter
        metrics.certificateExpiry.record(expiry.timeIntervalSince1970)
        let left = expiry.timeIntervalSince(now)
        guard left < Double(warnAhead.components.seconds) else { return }
        let when = ISO8601DateFormatter().string(from: expiry)
        if left <= 0 {
            logger.critical("the certificate \(files.certificatePath) (serial \(files.serial)) expired at \(when): peers and clients refuse it. Renew it (chorus-tools certs renew) and send SIGHUP")
        } else {
            logger.warning("the certificate \(files.certificatePath) (serial \(files.serial)) expires at \(when), in \(Int(left / 86_400)) days: renew it (chorus-tools certs renew) and send SIGHUP")
        }
    }
}
