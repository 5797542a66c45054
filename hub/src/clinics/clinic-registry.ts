import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClinicConfig, type DepartmentConfig } from '@clinic-hub/protocol';
import { ConfigError } from '@clinic-hub/platform/config';

/**
 * The clinics this hub serves: read from one JSON file per clinic at
 * start-up (the seed), then kept as the clinic's settings in Redis say
 * (hub/src/settings): `replace` swaps in a clinic's new settings on every
 * node. Callers read a clinic at the moment they need it, never keep it.
 */
export class ClinicRegistry {
  private readonly clinics = new Map<string, ClinicConfig>();

  constructor(clinics: ClinicConfig[]) {
    for (const clinic of clinics) this.clinics.set(clinic.id, clinic);
  }

  static fromDirectory(dir: string): ClinicRegistry {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    } catch {
      throw new ConfigError(`CLINICS_DIR: cannot read directory "${dir}"`);
    }
    if (files.length === 0) throw new ConfigError(`CLINICS_DIR: no clinic .json files in "${dir}"`);
    const clinics = files.map((file) => {
      const path = join(dir, file);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(path, 'utf8'));
      } catch (error) {
        throw new ConfigError(`CLINICS_DIR: ${path} is not valid JSON (${(error as Error).message})`);
      }
      const parsed = ClinicConfig.safeParse(raw);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
        throw new ConfigError(`CLINICS_DIR: ${path} is not a valid clinic: ${issues}`);
      }
      return parsed.data;
    });
    return new ClinicRegistry(clinics);
  }

  /** A known clinic's new settings (an unknown id is ignored: clinics come from CLINICS_DIR). */
  replace(config: ClinicConfig): boolean {
    if (!this.clinics.has(config.id)) return false;
    this.clinics.set(config.id, config);
    return true;
  }

  all(): ClinicConfig[] {
    return [...this.clinics.values()];
  }

  get(id: string): ClinicConfig | undefined {
    return this.clinics.get(id);
  }

  department(clinicId: string, deptId: string): DepartmentConfig | undefined {
    return this.clinics.get(clinicId)?.departments.find((d) => d.id === deptId);
  }

  ids(): string[] {
    return [...this.clinics.keys()];
  }
}
